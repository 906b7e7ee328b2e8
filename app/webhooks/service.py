"""Editors' outbound webhooks: register (secret shown once), list with their log, remove."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidInput, NotFound
from app.models import Webhook, WebhookDelivery, WebhookDeliveryStatus
from app.webhooks.events import EVENTS
from app.webhooks.safety import check_url

MAX_WEBHOOKS = 50
LOG_MAX = 200


def create_webhook(
    session: Session, settings: Settings, url: str, events: list[str], now: datetime
) -> tuple[Webhook, str]:
    """Register an endpoint for some events; return it and its signing secret (shown once)."""
    wanted = list(dict.fromkeys(events))
    if not wanted:
        raise InvalidInput(f"Name at least one event: {', '.join(EVENTS)}.")
    unknown = [e for e in wanted if e not in EVENTS]
    if unknown:
        raise InvalidInput(f"Unknown events {unknown}; known: {', '.join(EVENTS)}.")
    check_url(url, settings.webhook_allow_private)
    if (session.scalar(select(func.count()).select_from(Webhook)) or 0) >= MAX_WEBHOOKS:
        raise InvalidInput(f"At most {MAX_WEBHOOKS} webhooks.")
    secret = "whsec_" + secrets.token_urlsafe(32)
    row = Webhook(url=url.strip(), events=wanted, secret=secret, created_at=now)
    session.add(row)
    session.flush()
    return row, secret


def get_webhook(session: Session, webhook_id: int) -> Webhook:
    """Return one webhook or raise NotFound."""
    row = session.get(Webhook, webhook_id)
    if row is None:
        raise NotFound(f"No webhook {webhook_id}.")
    return row


def delete_webhook(session: Session, webhook_id: int) -> None:
    """Remove a webhook; its undelivered events go with it."""
    session.delete(get_webhook(session, webhook_id))
    session.flush()


def enable_webhook(session: Session, webhook_id: int) -> Webhook:
    """Re-enable a webhook that was disabled after failures; its waiting events resume."""
    row = get_webhook(session, webhook_id)
    row.disabled_at = None
    row.disabled_reason = None
    row.consecutive_failures = 0
    session.flush()
    return row


def delivery_log(session: Session, webhook_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """Return a webhook's newest deliveries: event, status, attempts, last answer."""
    get_webhook(session, webhook_id)
    if not 1 <= limit <= LOG_MAX:
        raise InvalidInput(f"limit must be between 1 and {LOG_MAX}.")
    rows = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return [log_entry(r) for r in rows]


def log_entry(row: WebhookDelivery) -> dict[str, Any]:
    """Return one delivery as the log shows it."""
    open_ = row.status in (WebhookDeliveryStatus.pending, WebhookDeliveryStatus.sending)
    return {
        "id": row.id,
        "event_id": row.event_id,
        "event": row.event,
        "status": row.status,
        "attempts": row.attempts,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "delivered_at": row.delivered_at,
        "next_attempt_at": row.next_attempt_at if open_ else None,
    }


def list_webhooks(session: Session) -> list[dict[str, Any]]:
    """Return every webhook with its delivery counts and last few log entries (no secrets)."""
    counts: dict[int, dict[str, int]] = {}
    for webhook_id, status, n in session.execute(
        select(WebhookDelivery.webhook_id, WebhookDelivery.status, func.count()).group_by(
            WebhookDelivery.webhook_id, WebhookDelivery.status
        )
    ):
        counts.setdefault(webhook_id, {})[str(status)] = int(n)
    out = []
    for row in session.scalars(select(Webhook).order_by(Webhook.id)):
        by_status = {s.value: counts.get(row.id, {}).get(s.value, 0) for s in WebhookDeliveryStatus}
        out.append(
            {
                "id": row.id,
                "url": row.url,
                "events": list(row.events),
                "created_at": row.created_at,
                "enabled": row.disabled_at is None,
                "disabled_at": row.disabled_at,
                "disabled_reason": row.disabled_reason,
                "consecutive_failures": row.consecutive_failures,
                "deliveries": by_status,
                "recent": delivery_log(session, row.id, limit=5),
            }
        )
    return out
