"""SendGrid: the signed Event Webhook (ECDSA P-256 over timestamp + raw body), in batches.

`bounce` (type "bounce" is permanent, "blocked" temporary), `dropped` (SendGrid will not try the
address: treated as permanent) and `spamreport`. SendGrid echoes our Message-ID as `smtp-id`.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from app.bounces.parse import classify
from app.models import BounceKind
from app.providers.reports import BadPayload, BadSignature, ProviderReport, text

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


@lru_cache(maxsize=4)
def load_public_key(encoded: str) -> ec.EllipticCurvePublicKey:
    """Load the verification key as SendGrid shows it (base64 DER); ValueError if it is not one."""
    try:
        key = load_der_public_key(base64.b64decode(encoded.strip(), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not a base64 DER public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ECDSA P-256 public key")
    return key


def check_signature(body: bytes, signature: str | None, timestamp: str | None, key: str) -> None:
    """Raise BadSignature unless `signature` signs timestamp + body with the configured key."""
    if not key:
        raise BadSignature("MORNINGPOST_SENDGRID_PUBLIC_KEY is not set")
    if not signature or not timestamp:
        raise BadSignature(f"{SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required")
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
        load_public_key(key).verify(raw, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise BadSignature("the signature does not verify") from None


# Drops for our own mail or account (SendGrid's spam checker, a bad X-SMTPAPI header, the
# plan's quota, the size limit): the reader's address is fine, so they stay; editors see it.
_OUR_DROPS = ("spam content", "smtpapi", "quota", "size")


def _dropped(reason: str) -> BounceKind:
    """Return the kind of a `dropped` event by its reason (SendGrid's own suppressions)."""
    lowered = reason.lower()
    if "spam reporting" in lowered:
        return BounceKind.complaint  # the reader reported earlier mail as spam
    if any(ours in lowered for ours in _OUR_DROPS):
        return BounceKind.policy
    return BounceKind.hard  # a bounced, invalid or unsubscribed address: stop mailing it


def _kind(event: dict[str, Any]) -> BounceKind | None:
    name = text(event.get("event"))
    if name == "spamreport":
        return BounceKind.complaint
    if name == "dropped":
        return _dropped(text(event.get("reason")))
    if name != "bounce":
        return None
    # A policy refusal (5.7.x and the like) is about our mail, not the reader's mailbox.
    if classify("failed", text(event.get("status")), text(event.get("reason"))) == "policy":
        return BounceKind.policy
    # "blocked" is SendGrid's temporary refusal; "bounce" a permanent one (it stops mailing).
    return BounceKind.soft if text(event.get("type")) == "blocked" else BounceKind.hard


def parse(data: Any) -> list[ProviderReport]:
    """Return the reports in one verified batch (events of other kinds are skipped)."""
    if not isinstance(data, list):
        raise BadPayload("a SendGrid event webhook body is a JSON array")
    reports = []
    for event in data:
        if not isinstance(event, dict):
            continue
        kind = _kind(event)
        event_id = text(event.get("sg_event_id"), 200)
        if kind is None or not event_id:
            continue
        reports.append(
            ProviderReport(
                provider="sendgrid",
                event_id=event_id,
                kind=kind,
                recipient=text(event.get("email"), 320).lower(),
                message_id=text(event.get("smtp-id"), 250) or None,
                status_code=text(event.get("status"), 16),
                diagnostic=text(event.get("reason")),
            )
        )
    return reports
