"""Send an issue: test copies; now, later or at each reader's time; cancel, pause, resume."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.addresses import normalize_email
from app.errors import Conflict, InvalidInput
from app.issues.drafts import get_issue
from app.issues.previews import compile_issue
from app.issues.recipients import issue_audience, part_filter
from app.issues.schemas import SendIn
from app.issues.send_checks import pre_send_check
from app.models import (
    Issue,
    IssueStatus,
    OutboxKind,
    OutboxMessage,
    Subscriber,
    SubscriberStatus,
)
from app.rendering.compile import Renderer
from app.sends.store.sends import (
    cancel_send,
    flip_status,
    requeue_unknown,
    resume_send,
    schedule_send,
    start_local_send,
    start_send,
)
from app.suppressions.service import bounce_detail, lift_send_bounces

STOPPABLE = (IssueStatus.scheduled, IssueStatus.sending, IssueStatus.paused)


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


def keep_send_audience(session: Session, issue_id: int, data: SendIn, now: datetime) -> None:
    """Keep on a draft the audience its send asks for (a segment's filter, a filter, or none).

    For a start that reads it from the issue (an A/B test's sample and rest), as a scheduled
    start does: a send asked for a segment never goes to the whole newsletter, nor to the
    audience of an earlier send that did not go out. Anything but a draft is left for the
    start to refuse.
    """
    issue = get_issue(session, issue_id)
    if issue.status != IssueStatus.draft:
        return
    issue.audience_filter = part_filter(session, issue, data, now)
    session.flush()


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


def resend_unknown(session: Session, issue_id: int, now: datetime) -> int:
    """Send the issue's `unknown` deliveries again (once each); return how many were queued."""
    get_issue(session, issue_id)
    return requeue_unknown(session, issue_id, now)
