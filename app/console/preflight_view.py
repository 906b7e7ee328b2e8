"""The preflight as the console shows it: a checklist of rules, each passed or with findings."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio.from_thread
from sqlalchemy.orm import Session

from app.context import Context
from app.issues import service
from app.issues.check import CLIP_BYTES, WARN_BYTES, Finding
from app.media.service import own_media_size
from app.models import Issue

# (key, what the rule checks, the codes it owns); "sending" takes every other code.
RULES: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("size", "The email stays under Gmail's 102 KB clipping limit", frozenset(
        {"html_too_large", "html_large"})),
    ("subject", "Subject of 10 to 78 characters, and a preheader", frozenset(
        {"subject_short", "subject_long", "no_preheader"})),
    ("images", "Every image has alt text and weighs under 1 MB", frozenset(
        {"image_no_alt", "image_heavy"})),
    ("link_text", "Link texts say where they lead (no \u201cclick here\u201d)", frozenset(
        {"vague_link_text"})),
    ("links", "Links are well-formed, and answer", frozenset(
        {"malformed_link", "insecure_link", "link_broken", "link_no_answer", "link_not_checked"})),
    ("text", "The plain-text part has the issue's text", frozenset({"text_part_empty"})),
    ("sending", "Sender, signature, postal address and unsubscribe link", frozenset()),
)  # fmt: skip


@dataclass
class Rule:
    """One line of the checklist."""

    key: str
    title: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def state(self) -> str:
        """Return error, warning or ok."""
        if any(f.level == "error" for f in self.findings):
            return "error"
        return "warning" if self.findings else "ok"


@dataclass
class Checklist:
    """What the console's checklist partial shows."""

    rules: list[Rule]
    html_bytes: int
    links_checked: bool
    link_count: int
    warn_bytes: int = WARN_BYTES
    clip_bytes: int = CLIP_BYTES

    @property
    def errors(self) -> int:
        """Return how many findings block the send."""
        return sum(f.level == "error" for r in self.rules for f in r.findings)

    @property
    def warnings(self) -> int:
        """Return how many findings are warnings."""
        return sum(f.level == "warning" for r in self.rules for f in r.findings)


def checklist(ctx: Context, session: Session, issue: Issue, *, links: bool) -> Checklist:
    """Run the preflight (fetching links only when asked: it is slow) and group it by rule.

    Called from a sync route, so in a worker thread: the fetches run on the event loop.
    """
    size_of = own_media_size(ctx.media, ctx.settings.base_url)
    report = service.preflight(ctx.renderer, issue, size_of, session=session)
    found = list(report.findings)
    if links and report.targets:
        # Nothing was written; end the transaction before seconds of network I/O (on SQLite a
        # transaction holds the write lock, and every other request would wait for it).
        session.commit()
        found += anyio.from_thread.run(service.check_links, ctx.links, report)
    rules = [Rule(key, title) for key, title, _ in RULES]
    by_key = {r.key: r for r in rules}
    for finding in found:
        key = next((k for k, _, codes in RULES if finding.code in codes), "sending")
        by_key[key].findings.append(finding)
    for rule in rules:
        rule.findings.sort(key=lambda f: (f.level != "error", f.block or 0))
    return Checklist(rules, report.html_bytes, links, len(report.targets))
