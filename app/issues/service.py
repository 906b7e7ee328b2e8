"""Issues: create, edit, preview, test-send, send, cancel. Services flush; callers commit."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from app.addresses import normalize_email
from app.audience.filter_sql import compile_filter
from app.audience.newsletters import by_slug, get_newsletter, masthead
from app.audience.segments import get_segment, send_audience
from app.bounces.service import bounce_stats, policy_alerts
from app.clicks.service import click_counts
from app.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
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
from app.issues.schemas import IssueIn, IssuePatch, SendIn, SendStats
from app.models import (
    Issue,
    IssueStatus,
    OutboxKind,
    OutboxMessage,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from app.rendering import placeholders
from app.rendering.blocks import parse_blocks
from app.rendering.compile import QR_CID, CompiledEmail, Renderer
from app.rendering.masthead import Masthead
from app.sends.store.ledger import count_send_recipients, issue_stats
from app.sends.store.log import DeliveryPage, delivery_page
from app.sends.store.progress import send_rate
from app.sends.store.sends import (
    Admit,
    SendGate,
    cancel_send,
    flip_status,
    requeue_unknown,
    resume_send,
    schedule_send,
    start_local_send,
    start_send,
    waves,
)
from app.subscribers.service import parse_cursor
from app.suppressions.service import bounce_detail, lift_send_bounces
from app.tokens import TokenService

EDITABLE = (IssueStatus.draft, IssueStatus.scheduled)
STOPPABLE = (IssueStatus.scheduled, IssueStatus.sending, IssueStatus.paused)


def slugify(text: str) -> str:
    """Return a URL slug made from `text`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:80].rstrip("-") or "issue"


def _free_slug(session: Session, wanted: str, explicit: bool, issue_id: int | None = None) -> str:
    query = select(Issue.id).where(Issue.slug == wanted)
    if issue_id is not None:
        query = query.where(Issue.id != issue_id)
    if session.scalar(query) is None:
        return wanted
    if explicit:
        raise Conflict(f"The slug {wanted!r} is taken by another issue.")
    # A generated slug gets the first free numeric suffix, as Ghost does.
    taken = set(session.scalars(select(Issue.slug).where(Issue.slug.like(f"{wanted}-%"))).all())
    n = 2
    while f"{wanted}-{n}" in taken:
        n += 1
    return f"{wanted}-{n}"


def get_issue(session: Session, issue_id: int) -> Issue:
    """Return the issue or raise NotFound."""
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise NotFound(f"No issue {issue_id}.")
    return issue


def list_issues(session: Session, status: str | None = None) -> list[Issue]:
    """Return issues, newest first, optionally of one status."""
    # An automation's carriers (a sequence step, an A/B variant) are not editors' issues.
    query = select(Issue).where(Issue.automation.is_(None)).order_by(Issue.id.desc())
    if status:
        if status not in IssueStatus.__members__:
            raise InvalidInput(f"Unknown status {status!r}.")
        query = query.where(Issue.status == status)
    return list(session.scalars(query).all())


def create_issue(session: Session, data: IssueIn, renderer: Renderer) -> Issue:
    """Validate the blocks, make sure the issue renders, and store it as a draft."""
    blocks = parse_blocks(data.blocks)
    newsletter = by_slug(session, data.newsletter)
    slug = _free_slug(session, data.slug or slugify(data.subject), explicit=data.slug is not None)
    issue = Issue(
        slug=slug,
        subject=data.subject,
        preheader=data.preheader,
        blocks=blocks,
        newsletter_id=newsletter.id,
    )
    compile_issue(renderer, issue)  # a block that cannot render is refused now, not at send time
    session.add(issue)
    session.flush()
    return issue


def issue_etag(issue: Issue) -> str:
    """Return the ETag of an issue: its id and the version of its content and schedule."""
    return f'"{issue.id}-{issue.version}"'


def etag_version(issue_id: int, if_match: str | None) -> int | None:
    """Return the version an If-Match header names for this issue (None: no condition).

    `*` or no header means no condition (old scripts keep working); a tag that names no
    version of this issue is version 0, which never matches, so the save is refused (412).
    """
    if if_match is None or if_match.strip() == "*":
        return None
    for tag in if_match.split(","):
        tag = tag.strip().removeprefix("W/").strip('"')
        prefix, _, number = tag.partition("-")
        if prefix == str(issue_id) and number.isdigit() and len(number) < 10:
            return int(number)
    return 0


def update_issue(
    session: Session,
    issue_id: int,
    patch: IssuePatch,
    renderer: Renderer,
    *,
    if_version: int | None = None,
) -> Issue:
    """Change a draft or scheduled issue, at `if_version` when given (else PreconditionFailed).

    The save is a compare-and-set on the status (and the version): an edit never lands on a
    send that started after it read the issue (Conflict), nor over another editor's save
    made after the version it was given (PreconditionFailed).
    """
    issue = get_issue(session, issue_id)
    if if_version is not None and issue.version != if_version:
        raise _stale(issue)
    if issue.status not in EDITABLE:
        raise _not_editable(issue)
    fields = patch.model_fields_set
    values: dict[str, Any] = {}
    if "subject" in fields and patch.subject is not None:
        values["subject"] = patch.subject
    if "preheader" in fields and patch.preheader is not None:
        values["preheader"] = patch.preheader
    if "slug" in fields and patch.slug is not None:
        values["slug"] = _free_slug(session, patch.slug, explicit=True, issue_id=issue.id)
    if "blocks" in fields and patch.blocks is not None:
        values["blocks"] = parse_blocks(patch.blocks)
    if "send_at" in fields:
        if issue.status == IssueStatus.scheduled and patch.send_at is None:
            raise InvalidInput("A scheduled issue needs a send_at; cancel it to stop the send.")
        values["send_at"] = patch.send_at
    if "newsletter" in fields:
        # As on create: a slug, or null for the default newsletter; unknown: InvalidInput.
        target = by_slug(session, patch.newsletter)
        if target.id != issue.newsletter_id:
            if issue.status != IssueStatus.draft:
                # A scheduled send was checked (segment, readers) against its newsletter.
                raise Conflict(
                    f"Issue {issue.id} is {issue.status}; only a draft moves to another "
                    "newsletter (cancel the schedule first)."
                )
            values["newsletter_id"] = target.id
    # A text that cannot render is refused now, before anything is written.
    compile_issue(renderer, _draft_of(issue, values))
    if not values:
        return issue
    saved = session.execute(
        update(Issue)
        .where(
            Issue.id == issue_id,
            # A move to another newsletter lands on a draft only (never on a started send).
            Issue.status.in_(EDITABLE)
            if "newsletter_id" not in values
            else Issue.status == IssueStatus.draft,
            # Without If-Match an old script's save still wins over a newer one, as before;
            # it still never lands on a send that has started.
            *([Issue.version == issue.version] if if_version is not None else []),
        )
        .values(**values, version=Issue.version + 1, updated_at=utcnow())
        .returning(Issue.id)
        .execution_options(synchronize_session=False)
    ).first()
    # Read the row as it is now (a lost compare-and-set: why; a won one: what it became).
    now_issue = session.scalars(
        select(Issue).where(Issue.id == issue_id).execution_options(populate_existing=True)
    ).one_or_none()
    if now_issue is None:
        raise NotFound(f"No issue {issue_id}.")
    if saved is None:
        raise _not_editable(now_issue) if now_issue.status not in EDITABLE else _stale(now_issue)
    return now_issue


def _draft_of(issue: Issue, values: dict[str, Any]) -> Issue:
    """Return an unsaved copy of the issue with `values` applied (to render before saving)."""
    fields = ("subject", "preheader", "slug", "blocks")
    return Issue(**{f: values.get(f, getattr(issue, f)) for f in fields})


def _stale(issue: Issue) -> PreconditionFailed:
    return PreconditionFailed(
        f"Issue {issue.id} was changed by someone else since you read it (it is at version "
        f"{issue.version} now); read it again, merge, and save.",
        issue_etag(issue),
    )


def _not_editable(issue: Issue) -> Conflict:
    return Conflict(
        f"Issue {issue.id} is {issue.status}; only drafts and scheduled issues change "
        "(a send that has started keeps the version it started with)."
    )


def delete_issue(session: Session, issue_id: int) -> None:
    """Delete a draft."""
    issue = get_issue(session, issue_id)
    if issue.status != IssueStatus.draft:
        raise Conflict(f"Issue {issue_id} is {issue.status}; only drafts can be deleted.")
    session.delete(issue)
    session.flush()


def compile_issue(renderer: Renderer, issue: Issue, head: Masthead | None = None) -> CompiledEmail:
    """Render the issue once (MJML, premailer): what every subscriber's copy is filled from."""
    return renderer.compile_issue(
        subject=issue.subject,
        preheader=issue.preheader,
        slug=issue.slug,
        blocks=issue.blocks,
        masthead=head,
    )


def issue_masthead(session: Session, renderer: Renderer, issue: Issue) -> Masthead:
    """Return the masthead of the issue's newsletter (name, sender, footer, List-Id)."""
    return masthead(get_newsletter(session, issue.newsletter_id), renderer.settings)


def preview_html(
    renderer: Renderer, tokens: TokenService, issue: Issue, head: Masthead | None = None
) -> str:
    """Return the email's HTML as a subscriber sees it (links carry a token of no one)."""
    # Merge tags show their defaults: a preview is no one reader's copy.
    html = compile_issue(renderer, issue, head).with_defaults().html
    # Subscriber id 0 never exists, so these links render and verify but change nothing.
    html = html.replace(placeholders.UNSUBSCRIBE_TOKEN, tokens.unsubscribe_token(0))
    html = html.replace(placeholders.PREFERENCES_TOKEN, tokens.preferences_token(0))
    # A browser cannot resolve cid: (the image travels inside the message); this app serves it.
    return html.replace(f"cid:{QR_CID}", "/subscribe/qr.png")


def queue_test_send(session: Session, issue_id: int, to: list[str], renderer: Renderer) -> int:
    """Queue [TEST] copies of an issue to the given addresses; they are not deliveries."""
    issue = get_issue(session, issue_id)
    addresses = list(dict.fromkeys(normalize_email(a) for a in to))
    compile_issue(renderer, issue)
    for address in addresses:
        session.add(OutboxMessage(kind=OutboxKind.test, to_address=address, issue_id=issue.id))
    session.flush()
    return len(addresses)


def send_issue(
    session: Session,
    issue_id: int,
    data: SendIn | None,
    now: datetime,
    renderer: Renderer,
    *,
    moments: Mapping[str, datetime] | None = None,
) -> dict[str, Any]:
    """Send now, schedule for later, or at a local time per reader; a repeated send is Conflict.

    `data` is the one validated send input (None: now, to the whole newsletter); every edge
    (API, console, CLI) builds it with read_send_in, so all refuse the same values. With a
    segment or a filter, only the newsletter's readers who match: its filter text is kept on
    the issue, so a scheduled start freezes the same audience.

    A local-time send's moments are `local_time` on `date` in each zone, unless the caller
    gives its own (`moments`, zone to UTC moment: a daily feed's next HH:MM per zone).

    Only a draft can be sent: a scheduled, sending, paused, sent or cancelled issue is a 409,
    so a second click never sends twice nor moves a send already planned.
    """
    issue = get_issue(session, issue_id)
    if issue.status != IssueStatus.draft:
        raise Conflict(f"Issue {issue_id} is already {issue.status}; it is never sent twice.")
    # Never freeze recipients for an issue that cannot render or would hurt delivery. The
    # start below is a compare-and-set on the version checked here: an edit saved meanwhile
    # makes it a Conflict, never a send of text this check did not see.
    checked = issue.version
    data = data or SendIn()
    send_at = data.send_at
    audience_filter = part_filter(session, issue, data, now)
    # Merge tags are checked against exactly the readers this send reaches.
    found = pre_send_check(renderer, issue, session, audience_filter)
    errors = [f.message for f in found if f.level == "error"]
    if errors:
        raise InvalidInput("The issue cannot be sent: " + " ".join(errors))
    audience = issue_audience(issue, now, audience_filter)
    session.execute(
        update(Issue)
        .where(Issue.id == issue_id)
        .values(audience_filter=audience_filter)
        .execution_options(synchronize_session=False)
    )
    if data.local_time is not None and data.date is not None:
        wall, day = data.local_time, data.date
        due = moments or local_moments(session, wall, day, renderer.settings.default_timezone)
        count, status = start_local_send(
            session,
            issue_id,
            now,
            due,
            (wall.strftime("%H:%M"), day.isoformat()),
            checked,
            audience,
        )
        session.refresh(issue)
        return {"id": issue.id, "status": status, "recipients": count, "send_at": issue.send_at}
    if send_at is not None and send_at > now:
        schedule_send(session, issue_id, send_at, checked)
        session.refresh(issue)
        return {"id": issue.id, "status": issue.status, "recipients": 0, "send_at": send_at}
    recipients = start_send(session, issue_id, now, checked, audience)
    session.refresh(issue)
    return {"id": issue.id, "status": issue.status, "recipients": recipients, "send_at": None}


def part_filter(session: Session, issue: Issue, part: SendIn | None, now: datetime) -> str | None:
    """Return the filter text a send keeps (checked now), or None for the whole newsletter."""
    if part is None or (part.segment is None and part.filter is None):
        return None
    if part.segment is not None:
        segment = get_segment(session, part.segment)
        if segment.newsletter_id not in (None, issue.newsletter_id):
            raise InvalidInput(
                f"Segment {segment.name!r} counts the readers of another newsletter than "
                "this issue's."
            )
        text = segment.filter
    else:
        text = part.filter or ""
    compile_filter(text, now)  # a broken filter is a 422 now, not a refusal at the start
    return text


def issue_audience(
    issue: Issue, now: datetime, audience_filter: str | None = None
) -> ColumnElement[bool]:
    """Return who an issue goes to: the active readers of its newsletter who match its filter."""
    return send_audience(audience_filter, now, issue.newsletter_id)


def planned_audience(
    session: Session, issue: Issue, now: datetime, part: SendIn | None = None
) -> ColumnElement[bool]:
    """Return the audience a send of the issue started now would freeze (as send_issue does)."""
    return issue_audience(issue, now, part_filter(session, issue, part, now))


def count_send(session: Session, issue_id: int, now: datetime, part: SendIn | None = None) -> int:
    """Count who a send of the issue started now would freeze (the confirmation page's number)."""
    issue = get_issue(session, issue_id)
    return count_send_recipients(session, now, planned_audience(session, issue, now, part))


def unschedule_issue(session: Session, issue_id: int) -> None:
    """Turn a scheduled issue back into a draft (an editor's explicit "send now instead").

    A local-time send has frozen its readers already: stop it with cancel instead.
    """
    issue = get_issue(session, issue_id)
    if issue.local_time is not None:
        raise Conflict(f"Issue {issue_id} goes out at each reader's local time; cancel it instead.")
    if issue.held_open:
        raise Conflict(f"Issue {issue_id} is an A/B test with its sample queued; cancel it.")
    flip_status(session, issue_id, IssueStatus.scheduled, IssueStatus.draft, None)
    session.refresh(issue)


def local_moments(
    session: Session, wall: time, day: date, default_zone: str
) -> dict[str, datetime]:
    """Return, for each zone active readers live in, the UTC moment of `wall` on `day` there."""
    zones = session.scalars(
        select(Subscriber.timezone).where(Subscriber.status == SubscriberStatus.active).distinct()
    ).all()
    moments: dict[str, datetime] = {}
    for zone in zones:
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            tz = ZoneInfo(default_zone)  # a name stored before validation: the list's default
        moments[zone] = datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)
    return moments


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
    compiled = compile_issue(renderer, issue).with_defaults()
    html = compiled.html
    size = len(html.encode("utf-8"))
    blocks = list(issue.blocks)
    lines = IssueLines(issue.subject, issue.preheader, issue.slug, blocks)
    links_and_images = collect(blocks)  # every link with its text, every image with its alt
    found = check_issue(renderer.settings, size, issue, html)
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


def cancel_issue(session: Session, issue_id: int, now: datetime) -> dict[str, Any]:
    """Stop a scheduled or sending issue; unsent deliveries become cancelled."""
    cancelled = cancel_send(session, issue_id, now, STOPPABLE)
    return {"id": issue_id, "status": IssueStatus.cancelled.value, "cancelled": cancelled}


def pause_issue(
    session: Session, issue_id: int, now: datetime, reason: str = "paused by an editor"
) -> dict[str, Any]:
    """Pause a sending issue: nothing more is claimed; messages already on the wire finish."""
    flip_status(session, issue_id, IssueStatus.sending, IssueStatus.paused, reason)
    return {"id": issue_id, "status": IssueStatus.paused.value, "pause_reason": reason[:500]}


def resume_issue(session: Session, issue_id: int, now: datetime) -> dict[str, Any]:
    """Resume a paused issue where it stopped: the ledger knows who still waits."""
    if resume_send(session, issue_id, now):
        lift_send_bounces(session, bounce_detail(issue_id), now)  # the relay was at fault
    return {"id": issue_id, "status": IssueStatus.sending.value, "pause_reason": None}


def stats(session: Session, issue_id: int, now: datetime | None = None) -> SendStats:
    """Return the delivery counts of an issue, its status, send rate and ETA."""
    issue = get_issue(session, issue_id)
    now = now or utcnow()
    counts = issue_stats(session, issue_id)
    rate = send_rate(session, issue_id, now, issue.started_at)
    waiting = counts["pending"] + counts["sending"] + counts["retry"]
    # A local-time send goes out in waves: readers not yet due wait for their own morning.
    later, next_due, last_due = waves(session, issue_id, now)
    due_now = waiting - later
    eta: float | None = due_now / rate if rate > 0 else (0 if not due_now else None)
    if last_due is not None and eta is not None:
        eta = max(eta, (last_due - now).total_seconds())
    return SendStats.model_validate(
        {
            **counts,
            "status": issue.status,
            "pause_reason": issue.pause_reason,
            "rate_per_second": round(rate, 1),
            "eta_seconds": round(eta) if eta is not None else None,
            "not_yet_due": later,
            "next_due_at": next_due,
            "local_time": issue.local_time,
            "local_date": issue.local_date,
            # Asynchronous bounces and complaints that came back for this issue's deliveries;
            # policy alerts mean receivers refused our mail (X.7.x): the sender must act.
            "bounces": bounce_stats(session, issue_id),
            "alerts": ([issue.alert] if issue.alert else []) + policy_alerts(session, issue_id),
            "clicks": click_counts(session, issue_id),  # per link, scanners left out
        }
    )


def issue_progress(session: Session, issue_id: int) -> tuple[str, SendStats]:
    """Return an issue's status and its stats (counts, rate, ETA)."""
    data = stats(session, issue_id)
    return data.status, data


def resend_unknown(session: Session, issue_id: int, now: datetime) -> int:
    """Send the issue's `unknown` deliveries again (once each); return how many were queued."""
    get_issue(session, issue_id)
    return requeue_unknown(session, issue_id, now)


def issue_deliveries(
    session: Session,
    issue_id: int,
    *,
    status: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> DeliveryPage:
    """Return a page of one issue's per-recipient log."""
    get_issue(session, issue_id)
    return delivery_page(
        session, issue_id=issue_id, status=status, q=q, after=parse_cursor(cursor), limit=limit
    )
