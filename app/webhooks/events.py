"""Emit outbound events: one webhook_deliveries row per matching webhook, in the caller's
transaction (an outbox), so an event is kept exactly when the change it reports is kept.

Callers are one-line hooks in the services that make the change; nothing here does I/O.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Delivery, Issue, Subscriber, Webhook, WebhookDelivery, utcnow

SUBSCRIBER_CONFIRMED = "subscriber.confirmed"
SUBSCRIBER_UNSUBSCRIBED = "subscriber.unsubscribed"
SUBSCRIBER_BOUNCED = "subscriber.bounced"
SUBSCRIBER_COMPLAINED = "subscriber.complained"
ISSUE_SENT = "issue.sent"
EVENTS = (
    SUBSCRIBER_CONFIRMED,
    SUBSCRIBER_UNSUBSCRIBED,
    SUBSCRIBER_BOUNCED,
    SUBSCRIBER_COMPLAINED,
    ISSUE_SENT,
)


def event_body(event_id: str, event: str, at: datetime, data: dict[str, Any]) -> str:
    """Return the JSON body of one event, as signed and sent."""
    payload = {"id": event_id, "event": event, "at": at.isoformat(), "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def listeners(session: Session, event: str) -> list[int]:
    """Return the ids of enabled webhooks that listen to `event`."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    hooks = session.execute(
        select(Webhook.id, Webhook.events).where(Webhook.disabled_at.is_(None))
    ).all()
    return [h.id for h in hooks if event in (h.events or ())]


def emit(
    session: Session,
    event: str,
    data: dict[str, Any],
    now: datetime | None = None,
    targets: list[int] | None = None,
) -> int:
    """Queue `event` for every enabled webhook that listens to it; return how many."""
    targets = listeners(session, event) if targets is None else targets
    if not targets:
        return 0
    at = now or utcnow()
    event_id = "evt_" + uuid.uuid4().hex
    body = event_body(event_id, event, at, data)
    session.add_all(
        WebhookDelivery(
            webhook_id=webhook_id,
            event_id=event_id,
            event=event,
            body=body,
            next_attempt_at=at,
            created_at=at,
        )
        for webhook_id in targets
    )
    session.flush()
    return len(targets)


def _subscriber_data(row: Subscriber, reason: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "subscriber_id": row.id,
        "email": row.email,
        "name": row.name,
        "status": row.status,
    }
    if reason:
        data["reason"] = reason
    return data


def subscriber_event(
    session: Session, event: str, row: Subscriber | None, reason: str | None = None
) -> None:
    """Emit a subscriber event about `row` (None, e.g. an erased reader, emits nothing)."""
    if row is not None:
        emit(session, event, _subscriber_data(row, reason))


def subscribers_event(
    session: Session, event: str, subscriber_ids: Iterable[int], reason: str | None = None
) -> None:
    """Emit one subscriber event per id (a set-based change, e.g. hard bounces of a batch)."""
    ids = list(subscriber_ids)
    targets = listeners(session, event) if ids else []
    if not targets:
        return  # the usual case: one cheap query, no subscriber rows read
    rows = list(session.scalars(select(Subscriber).where(Subscriber.id.in_(ids))))
    for row in rows:
        emit(session, event, _subscriber_data(row, reason), targets=targets)


def issues_sent(session: Session, issue_ids: Sequence[int]) -> list[int]:
    """Emit issue.sent for each finished issue with its final counts; return the ids unchanged."""
    for issue_id in issue_ids:
        issue = session.get(Issue, issue_id)
        if issue is None:
            continue
        counts = {
            str(status): int(n)
            for status, n in session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.issue_id == issue_id)
                .group_by(Delivery.status)
            )
        }
        emit(
            session,
            ISSUE_SENT,
            {
                "issue_id": issue.id,
                "slug": issue.slug,
                "subject": issue.subject,
                "started_at": issue.started_at.isoformat() if issue.started_at else None,
                "finished_at": issue.finished_at.isoformat() if issue.finished_at else None,
                "recipients": sum(counts.values()),
                "deliveries": counts,
            },
        )
    return list(issue_ids)


def status_event(status: str) -> str:
    """Return the event for a reader suppressed into `status` (complained or bounced)."""
    return SUBSCRIBER_COMPLAINED if status == "complained" else SUBSCRIBER_BOUNCED
