"""Record verified provider reports as bounce events (flush only; the caller commits)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.bounces.service import Outcome, first_time, record_outcome
from app.config import Settings
from app.models import Delivery, DeliveryStatus, ProviderEvent, Subscriber
from app.providers.reports import PROVIDERS, ProviderReport

log = logging.getLogger("morningpost.providers")

# Our Message-IDs name their delivery: <mp.ISSUE.DELIVERY.RANDOM@domain>.
_OUR_MESSAGE_ID = re.compile(r"<?mp\.(\d{1,18})\.(\d{1,18})\.[0-9a-f]{16,64}@[^>\s]+>?")
# A bounce or complaint can only be about a message that went out (or may have).
_MAILED = (DeliveryStatus.sent, DeliveryStatus.unknown)


@dataclass
class Recorded:
    """What one webhook request amounted to."""

    counted: int = 0
    duplicates: int = 0
    unmatched: int = 0


def _by_message_id(session: Session, message_id: str) -> Delivery | None:
    match = _OUR_MESSAGE_ID.fullmatch(message_id.strip())
    if match is None:
        return None
    delivery = session.get(Delivery, int(match.group(2)))
    wanted = message_id.strip().strip("<>")
    # The random part must match too: an id alone would let anyone name any delivery.
    if delivery is None or (delivery.message_id or "").strip("<>") != wanted:
        return None
    return delivery


def _by_recipient(session: Session, address: str) -> Delivery | None:
    subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.email == address))
    if subscriber_id is None:
        return None
    return session.scalars(
        select(Delivery)
        .where(Delivery.subscriber_id == subscriber_id, Delivery.status.in_(_MAILED))
        .order_by(Delivery.id.desc())
        .limit(1)
    ).first()


def delivery_for(session: Session, report: ProviderReport) -> Delivery | None:
    """Return the delivery a report is about: by our Message-ID, else the reader's latest."""
    if report.message_id:
        found = _by_message_id(session, report.message_id)
        if found is not None:
            return found
    return _by_recipient(session, report.recipient) if report.recipient else None


def record_reports(
    session: Session, reports: Sequence[ProviderReport], settings: Settings, now: datetime
) -> Recorded:
    """Record each report once, for the delivery it concerns; skip repeats and strangers."""
    out = Recorded()
    for report in reports:
        if not first_time(session, report.provider, report.event_id, now):
            out.duplicates += 1
            continue
        delivery = delivery_for(session, report)
        if delivery is None:
            log.info("%s event %s matches none of our deliveries", report.provider, report.event_id)
            out.unmatched += 1
            continue
        sid = delivery.subscriber_id
        subscriber = session.get(Subscriber, sid) if sid is not None else None
        outcome = Outcome(report.kind, report.status_code, report.diagnostic)
        record_outcome(session, delivery, subscriber, outcome, report.provider, settings, now)
        out.counted += 1
    return out


def last_events(session: Session) -> dict[str, datetime | None]:
    """Return when each provider's last event arrived (None: never), for the console."""
    rows = session.execute(
        select(ProviderEvent.provider, func.max(ProviderEvent.received_at))
        .where(ProviderEvent.provider.in_(PROVIDERS))
        .group_by(ProviderEvent.provider)
    ).all()
    seen = {provider: at for provider, at in rows}
    return {provider: seen.get(provider) for provider in PROVIDERS}
