"""Mailgun: `failed` and `complained` events, signed with HMAC-SHA256 over timestamp + token.

A request older than five minutes, or whose one-time token was seen before, is refused; the
service keeps the tokens (see app.providers.service.first_time).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from app.bounces.parse import classify
from app.models import BounceKind
from app.providers.reports import BadPayload, BadSignature, ProviderReport, text

MAX_AGE_SECONDS = 300


def check_signature(data: Any, key: str, now: float) -> str:
    """Verify the body's `signature` object; return its one-time token or raise BadSignature."""
    if not key:
        raise BadSignature("MORNINGPOST_MAILGUN_SIGNING_KEY is not set")
    sig = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(sig, dict):
        raise BadSignature("the body has no signature object")
    timestamp, token, given = (text(sig.get(k), 200) for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and given):
        raise BadSignature("the signature object is incomplete")
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest refuses a str with non-ASCII in it (a TypeError, a 500).
    if not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise BadSignature("the signature does not verify")
    try:
        age = now - float(timestamp)
    except ValueError:
        raise BadSignature("the timestamp is not a number") from None
    if abs(age) > MAX_AGE_SECONDS:
        raise BadSignature("the timestamp is more than five minutes from now")
    return token


def parse(data: dict[str, Any]) -> list[ProviderReport]:
    """Return the report in a verified Mailgun webhook body (none for other events)."""
    event = data.get("event-data")
    if not isinstance(event, dict):
        raise BadPayload("the body has no event-data object")
    name = text(event.get("event"))
    severity = text(event.get("severity"))
    if name == "complained":
        kind = BounceKind.complaint
    elif name == "failed" and severity == "temporary":
        kind = BounceKind.soft
    elif name == "failed" and severity == "permanent":
        kind = BounceKind.hard  # unless a policy refusal, below
    else:
        return []
    event_id = text(event.get("id"), 200)
    if not event_id:
        raise BadPayload("the event has no id")
    message = event.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    msgid = text(headers.get("message-id"), 250) if isinstance(headers, dict) else ""
    status = event.get("delivery-status")
    status = status if isinstance(status, dict) else {}
    diagnostic = text(status.get("description")) or text(status.get("message"))
    # A policy refusal (5.7.x: spam, DMARC, a blocklist) is about our mail, not the reader's
    # mailbox: the reader stays and the editors see an alert, as with SES and SendGrid.
    said = f"{text(status.get('message'))} {diagnostic}"
    found = classify("failed", text(status.get("enhanced-code"), 16), said)
    if kind == BounceKind.hard and found == BounceKind.policy:
        kind = BounceKind.policy
    return [
        ProviderReport(
            provider="mailgun",
            event_id=event_id,
            kind=kind,
            recipient=text(event.get("recipient"), 320).lower(),
            message_id=msgid or None,
            status_code=text(status.get("code"), 16),
            diagnostic=diagnostic or text(event.get("reason")),
        )
    ]
