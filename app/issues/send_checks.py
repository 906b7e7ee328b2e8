"""What must hold before a send: the preflight report, the pre-send check, the start's gate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.errors import InvalidInput
from app.issues.check import Finding, check_issue
from app.issues.linkcheck import LinkChecker
from app.issues.locate import IssueLines
from app.issues.merge_check import merge_findings
from app.issues.preflight import (
    collect,
    content_findings,
    link_findings,
    locate,
    network_targets,
)
from app.issues.previews import compile_issue, issue_masthead
from app.issues.recipients import issue_audience
from app.models import (
    Issue,
    utcnow,
)
from app.rendering.compile import Renderer
from app.sends.store.sends import (
    Admit,
    SendGate,
)


@dataclass(frozen=True)
class Preflight:
    """The cheap part of an issue's preflight, and what the slow (network) part needs."""

    findings: list[Finding]
    html_bytes: int
    lines: IssueLines
    targets: list[tuple[int, str]]  # (block, url) to fetch: links and images elsewhere
    image_urls: frozenset[str]

    @property
    def ok(self) -> bool:
        """Tell whether nothing blocks the send."""
        return not any(f.level == "error" for f in self.findings)


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.level != "error", f.block or 0))


def preflight(
    renderer: Renderer,
    issue: Issue,
    size_of: Callable[[str], int | None] | None = None,
    *,
    session: Session | None = None,
    audience_filter: str | None = None,
) -> Preflight:
    """Render the issue and run every rule that needs no network; `size_of` weighs own images.

    With a session, merge tags are checked against the readers the send would reach (the
    newsletter's, narrowed by `audience_filter`).
    """
    # With a session, the issue's own newsletter: its footer, From and postal address.
    head = issue_masthead(session, renderer, issue) if session is not None else None
    compiled = compile_issue(renderer, issue, head).with_defaults()
    html = compiled.html
    size = len(html.encode("utf-8"))
    blocks = list(issue.blocks)
    lines = IssueLines(issue.subject, issue.preheader, issue.slug, blocks)
    links_and_images = collect(blocks)  # every link with its text, every image with its alt
    found = check_issue(renderer.settings, size, issue, html, head)
    found += content_findings(issue.subject, links_and_images, compiled.text, lines, size_of)
    if session is not None:
        found += merge_findings(session, issue, utcnow(), audience_filter)
    own = f"{renderer.settings.base_url}/"
    return Preflight(
        findings=_sorted(locate(found, lines)),
        html_bytes=size,
        lines=lines,
        targets=network_targets(links_and_images, own),
        image_urls=frozenset(i.url for i in links_and_images[1]),
    )


async def check_links(checker: LinkChecker, report: Preflight) -> list[Finding]:
    """Fetch the report's links (bounded, cached) and return warnings for those that fail."""
    statuses = await checker.check([url for _, url in report.targets])
    return link_findings(report.targets, statuses, set(report.image_urls), report.lines)


def pre_send_check(
    renderer: Renderer,
    issue: Issue,
    session: Session | None = None,
    audience_filter: str | None = None,
) -> list[Finding]:
    """Render the issue and list what would block or hurt its send, errors first.

    No network: links are not fetched here (that is slow, and only ever a warning). With a
    session, merge tags are checked against the send's readers too.
    """
    return preflight(renderer, issue, session=session, audience_filter=audience_filter).findings


def send_gate(renderer: Renderer) -> SendGate:
    """Return the check run when a scheduled issue starts: its pre-send errors, or None."""

    def gate(session: Session, issue_id: int) -> str | Admit | None:
        issue = session.get(Issue, issue_id)
        if issue is None:
            return "the issue is gone"
        if issue.held_open:
            # An automation's send (a scheduled A/B test): its text was checked and frozen
            # when it was set up, and that frozen text is what goes out.
            return None
        try:
            found = pre_send_check(renderer, issue, session, issue.audience_filter)
            errors = [f.message for f in found if f.level == "error"]
        except Exception as exc:  # a template that no longer renders is a refusal too
            return f"the issue does not render: {exc}"[:300]
        if errors:
            return "the pre-send check failed: " + " ".join(errors)
        try:
            return Admit(issue_audience(issue, utcnow(), issue.audience_filter))
        except InvalidInput as exc:  # a filter that stopped parsing (the language changed)
            return f"its audience filter no longer reads: {exc.message}"[:300]

    return gate
