"""Postmark: bounce and spam-complaint webhooks, authenticated by HTTP Basic credentials.

Postmark sends one JSON object per event, with `RecordType` "Bounce" (and a bounce `Type`) or
"SpamComplaint". It does not echo our Message-ID, so events are matched by recipient.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from app.models import BounceKind
from app.providers.reports import BadPayload, BadSignature, ProviderReport, text

# Postmark's documented bounce types, by what they mean for the reader.
HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}
SOFT = {"SoftBounce", "Transient", "DnsError", "Unknown"}
POLICY = {"Blocked", "DMARCPolicy", "SpamNotification", "VirusNotification"}
COMPLAINT = {"SpamComplaint"}
# AutoResponder, AddressChange, Subscribe, Unsubscribe, OpenRelayTest, ChallengeVerification,
# Unconfirmed, SMTPApiError, InboundError, TemplateRenderingFailed: nothing about the reader.


def check_auth(header: str | None, expected: str) -> None:
    """Raise BadSignature unless `header` is HTTP Basic with the configured user:password."""
    if not expected:
        raise BadSignature("MORNINGPOST_POSTMARK_WEBHOOK_AUTH is not set")
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        raise BadSignature("HTTP Basic credentials are required")
    try:
        given = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadSignature("malformed Basic credentials") from None
    if not hmac.compare_digest(given, expected.encode()):
        raise BadSignature("wrong credentials")


def _kind(record_type: str, bounce_type: str) -> BounceKind | None:
    if record_type == "SpamComplaint" or bounce_type in COMPLAINT:
        return BounceKind.complaint
    if record_type != "Bounce":
        return None
    if bounce_type in HARD:
        return BounceKind.hard
    if bounce_type in SOFT:
        return BounceKind.soft
    if bounce_type in POLICY:
        return BounceKind.policy
    return None


def parse(data: Any) -> list[ProviderReport]:
    """Return the report in one Postmark webhook body (none for events about nothing we track)."""
    if not isinstance(data, dict):
        raise BadPayload("a Postmark webhook body is one JSON object")
    kind = _kind(text(data.get("RecordType")), text(data.get("Type")))
    event_id = text(data.get("ID"), 200)
    if kind is None:
        return []
    if not event_id:
        raise BadPayload("the event has no ID")
    return [
        ProviderReport(
            provider="postmark",
            event_id=f"{text(data.get('RecordType'))}:{event_id}",
            kind=kind,
            recipient=text(data.get("Email"), 320).lower(),
            message_id=None,
            status_code=text(data.get("Type"), 16),
            diagnostic=text(data.get("Details")) or text(data.get("Description")),
        )
    ]
