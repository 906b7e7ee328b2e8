"""Record inbound bounces and complaints and decide suppressions (flush only; caller commits)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.bounces.parse import InboundReport, RecipientReport, parse_report
from app.config import Settings
from app.models import (
    BounceEvent,
    BounceKind,
    Delivery,
    ProviderEvent,
    Subscriber,
)
from app.sends.verp import looks_like_verp, parse_verp
from app.suppressions.service import suppress_subscriber

log = logging.getLogger("morningpost.bounces")

# The VERP listener, our signed webhook, and each email provider's own webhook.
SOURCES = ("smtp", "mailbox", "webhook", "ses", "postmark", "sendgrid", "mailgun")
# How long a provider's event id (and a Mailgun token) is remembered. Providers redeliver for
# hours to three days (SendGrid: 72 h) and Mailgun's signatures live five minutes.
EVENT_ID_DAYS = 30


class ForgedReport(Exception):
    """A report names a VERP address whose tag does not verify."""


def find_delivery(
    session: Session,
    report: InboundReport,
    envelope_rcpts: Sequence[str],
    settings: Settings,
    source: str,
) -> Delivery | None:
    """Return the delivery a report is about; raise ForgedReport on a VERP that fails its check."""
    forged = False
    for address in [*envelope_rcpts, *report.envelope_candidates]:
        if not looks_like_verp(address):
            continue
        delivery_id = parse_verp(address, settings)
        if delivery_id is None:
            forged = True
            continue
        # A valid tag wins over a forged look-alike elsewhere in the headers.
        return session.get(Delivery, delivery_id)
    if forged:
        raise ForgedReport("VERP tag does not verify")
    # Only a signed webhook may name a delivery by Message-ID: over SMTP anyone can write to
    # bounces@, so there a report counts only when it carries a valid VERP tag.
    if report.original_message_id and source == "webhook":
        msgid = report.original_message_id.strip()
        msgid = msgid if msgid.startswith("<") else f"<{msgid.strip('<>')}>"
        return session.scalars(select(Delivery).where(Delivery.message_id == msgid)).first()
    return None


def first_time(session: Session, provider: str, event_id: str, now: datetime) -> bool:
    """Remember an event id; tell whether this is the first time it is seen."""
    try:
        # A savepoint: the same event delivered twice at once fails one insert, not the batch.
        with session.begin_nested():
            session.add(ProviderEvent(provider=provider, event_id=event_id[:200], received_at=now))
    except IntegrityError:
        return False
    return True


def forget_old_event_ids(session: Session, now: datetime) -> int:
    """Forget event ids older than EVENT_ID_DAYS but each provider's newest; return how many."""
    # The newest stays: the console tells when each provider's last event arrived.
    newest = select(func.max(ProviderEvent.id)).group_by(ProviderEvent.provider)
    gone = session.execute(
        delete(ProviderEvent)
        .where(
            ProviderEvent.received_at < now - timedelta(days=EVENT_ID_DAYS),
            ProviderEvent.id.not_in(newest),
        )
        .execution_options(synchronize_session=False)
    )
    return int(gone.rowcount or 0)  # type: ignore[attr-defined]


def _blocks_for(
    recipients: list[RecipientReport], subscriber: Subscriber | None
) -> list[RecipientReport]:
    """Keep the blocks about this subscriber; if none names them (an alias), keep them all."""
    if subscriber is None or len(recipients) <= 1:
        return recipients
    own = subscriber.email.lower()
    mine = [r for r in recipients if own in (r.recipient, r.original_recipient)]
    return mine or recipients


def record_inbound(
    session: Session,
    raw: bytes,
    source: str,
    settings: Settings,
    now: datetime,
    envelope_rcpts: Sequence[str] = (),
) -> list[BounceEvent]:
    """Record what a DSN or ARF report says about one of our deliveries, suppressing as due."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    report = parse_report(raw)
    if not report.is_report:
        log.info("inbound message via %s is not a DSN or feedback report; ignored", source)
        return []
    try:
        delivery = find_delivery(session, report, envelope_rcpts, settings, source)
    except ForgedReport:
        log.warning("inbound report via %s names a forged VERP address; ignored", source)
        return []
    if delivery is None:
        log.info("inbound report via %s matches none of our deliveries; ignored", source)
        return []
    subscriber = session.get(Subscriber, delivery.subscriber_id) if delivery.subscriber_id else None
    return [
        record_outcome(
            session,
            delivery,
            subscriber,
            Outcome(block.kind, block.status_code, block.diagnostic),
            source,
            settings,
            now,
        )
        for block in _blocks_for(report.recipients, subscriber)
    ]


@dataclass(frozen=True)
class Outcome:
    """What a report says happened to one delivery."""

    kind: str  # a BounceKind
    status_code: str
    diagnostic: str


def record_outcome(
    session: Session,
    delivery: Delivery,
    subscriber: Subscriber | None,
    outcome: Outcome,
    source: str,
    settings: Settings,
    now: datetime,
) -> BounceEvent:
    """Record one outcome of one delivery and apply the suppression rules to its reader."""
    event = BounceEvent(
        delivery_id=delivery.id,
        subscriber_id=subscriber.id if subscriber else None,
        kind=outcome.kind,
        status_code=outcome.status_code[:16],
        diagnostic=outcome.diagnostic[:500],
        source=source,
        received_at=now,
    )
    session.add(event)
    session.flush()
    log.info("delivery %s: %s %s via %s", delivery.id, event.kind, event.status_code, source)
    if subscriber is not None:
        _decide(session, subscriber, event, source, settings, now)
    return event


def _decide(
    session: Session,
    subscriber: Subscriber,
    event: BounceEvent,
    source: str,
    settings: Settings,
    now: datetime,
) -> None:
    """Apply the suppression rules to one recorded event."""
    detail = f"{event.status_code} {event.diagnostic}".strip()[:500]
    if event.kind == BounceKind.hard:
        suppress_subscriber(session, subscriber, "hard_bounce", source, detail, now)
    elif event.kind == BounceKind.complaint:
        suppress_subscriber(session, subscriber, "complaint", source, detail, now)
    elif event.kind == BounceKind.soft:
        since = now - timedelta(days=settings.soft_bounce_window_days)
        # Distinct deliveries: a relay that reports one failure twice is still one failure.
        count = session.scalar(
            select(func.count(func.distinct(BounceEvent.delivery_id))).where(
                BounceEvent.subscriber_id == subscriber.id,
                BounceEvent.kind == BounceKind.soft,
                BounceEvent.received_at >= since,
            )
        )
        if (count or 0) >= settings.soft_bounce_threshold:
            detail = f"{count} soft bounces in {settings.soft_bounce_window_days} days; {detail}"
            suppress_subscriber(session, subscriber, "soft_bounce", source, detail[:500], now)
    # policy and delayed never touch the reader: policy means our mail is at fault.


def bounce_stats(session: Session, issue_id: int) -> dict[str, int]:
    """Return one issue's bounce counts: hard, soft, complaints, policy_alerts, delayed."""
    rows = session.execute(
        select(BounceEvent.kind, func.count())
        .join(Delivery, Delivery.id == BounceEvent.delivery_id)
        .where(Delivery.issue_id == issue_id)
        .group_by(BounceEvent.kind)
    ).all()
    counts = {str(kind): int(n) for kind, n in rows}
    return {
        "hard": counts.get(BounceKind.hard, 0),
        "soft": counts.get(BounceKind.soft, 0),
        "complaints": counts.get(BounceKind.complaint, 0),
        "policy_alerts": counts.get(BounceKind.policy, 0),
        "delayed": counts.get(BounceKind.delayed, 0),
    }


def policy_alerts(session: Session, issue_id: int, limit: int = 5) -> list[str]:
    """Return the distinct diagnostics of policy refusals of one issue (for the editors' alert)."""
    rows = session.scalars(
        select(BounceEvent.diagnostic)
        .join(Delivery, Delivery.id == BounceEvent.delivery_id)
        .where(Delivery.issue_id == issue_id, BounceEvent.kind == BounceKind.policy)
        .group_by(BounceEvent.diagnostic)
        .order_by(func.max(BounceEvent.id).desc())
        .limit(limit)
    )
    return list(rows)
