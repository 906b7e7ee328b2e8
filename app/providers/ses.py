"""Amazon SES through SNS: verify the SNS message, then read SES's bounce or complaint in it.

SNS signs a canonical string of the message's fields with the key of a certificate it serves
at `SigningCertURL` (RSA with SHA-1 for SignatureVersion 1, SHA-256 for 2). The certificate is
trusted only from hosts matching MORNINGPOST_SNS_CERT_HOSTS over HTTPS, and only for topics in
MORNINGPOST_SNS_TOPICS: any AWS account can sign for a topic of its own.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.bounces.parse import classify
from app.models import BounceKind
from app.providers.reports import BadPayload, BadSignature, ProviderReport, text

TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_LABEL = re.compile(r"[a-z0-9-]{1,63}")


def envelope(body: bytes) -> dict[str, str]:
    """Parse an SNS HTTP(S) message; raise BadPayload if it is not one."""
    try:
        data = json.loads(body)
    except ValueError:
        raise BadPayload("the body is not JSON") from None
    if not isinstance(data, dict) or data.get("Type") not in TYPES:
        raise BadPayload("not an SNS message (Type)")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def host_allowed(url: str, patterns: list[str]) -> bool:
    """Tell whether `url` is https on a host matching one of `patterns`.

    A `*` stands for exactly one DNS label, and never for one that starts with "s3": S3 serves
    buckets at names such as sns.s3-us-west-2.amazonaws.com, and anyone can own such a bucket.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host or parts.username or parts.password:
        return False
    labels = host.split(".")
    for pattern in patterns:
        wanted = pattern.lower().split(".")
        if len(wanted) != len(labels):
            continue
        if all(
            (w == "*" and _LABEL.fullmatch(label) and not label.startswith("s3")) or w == label
            for w, label in zip(wanted, labels, strict=True)
        ):
            return True
    return False


def signing_string(message: dict[str, str]) -> bytes:
    """Return the canonical string SNS signs for this message type."""
    keys = _NOTIFICATION_KEYS if message.get("Type") == "Notification" else _CONFIRMATION_KEYS
    out = []
    for key in keys:
        if key in message:  # Subject is optional on notifications
            out.append(f"{key}\n{message[key]}\n")
        elif key != "Subject":
            raise BadSignature(f"the message has no {key}")
    return "".join(out).encode()


def verify(message: dict[str, str], certificate_pem: bytes, now: datetime) -> None:
    """Raise BadSignature unless the certificate's key signed this message."""
    version = message.get("SignatureVersion")
    algorithm: hashes.HashAlgorithm
    if version == "1":
        algorithm = hashes.SHA1()  # SNS's SignatureVersion 1 is SHA1withRSA
    elif version == "2":
        algorithm = hashes.SHA256()
    else:
        raise BadSignature("unknown SignatureVersion")
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem)
        signature = base64.b64decode(message.get("Signature", ""), validate=True)
    except (ValueError, binascii.Error):
        raise BadSignature("unreadable certificate or signature") from None
    if not cert.not_valid_before_utc <= now.astimezone(UTC) <= cert.not_valid_after_utc:
        raise BadSignature("the signing certificate is not valid now")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadSignature("the signing certificate has no RSA key")
    try:
        key.verify(signature, signing_string(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise BadSignature("the signature does not verify") from None


def _kind(bounce_type: str, sub_type: str, status: str, diagnostic: str) -> BounceKind | None:
    if sub_type in ("ContentRejected", "AttachmentRejected"):
        return BounceKind.policy  # our content, not the reader's mailbox
    if bounce_type == "Permanent":
        kind = classify("failed", status, diagnostic)
        return BounceKind.policy if kind == BounceKind.policy else BounceKind.hard
    return BounceKind.soft  # Transient and Undetermined


def parse_notification(message: dict[str, str]) -> list[ProviderReport]:
    """Return the reports in a verified SES notification (none for deliveries and others)."""
    try:
        data: Any = json.loads(message.get("Message", ""))
    except ValueError:
        return []  # a notification of the topic that is not from SES: nothing to record
    if not isinstance(data, dict):
        return []
    kind_name = text(data.get("notificationType") or data.get("eventType"))
    mail = data.get("mail")
    common = mail.get("commonHeaders") if isinstance(mail, dict) else None
    msgid = (text(common.get("messageId"), 250) if isinstance(common, dict) else "") or None
    base = message.get("MessageId", "")
    if not base:
        raise BadPayload("the SNS message has no MessageId")
    reports = []
    if kind_name == "Bounce" and isinstance(data.get("bounce"), dict):
        bounce = data["bounce"]
        for r in bounce.get("bouncedRecipients") or []:
            if not isinstance(r, dict):
                continue
            status, diagnostic = text(r.get("status"), 16), text(r.get("diagnosticCode"))
            bounce_type = text(bounce.get("bounceType"))
            kind = _kind(bounce_type, text(bounce.get("bounceSubType")), status, diagnostic)
            if kind is None:
                continue
            address = text(r.get("emailAddress"), 320).lower()
            reports.append(
                ProviderReport(
                    "ses",
                    f"{base}:{address}",
                    kind,
                    address,
                    msgid,
                    status or text(bounce.get("bounceSubType"), 16),
                    diagnostic or f"{text(bounce.get('bounceType'))} bounce",
                )
            )
    elif kind_name == "Complaint" and isinstance(data.get("complaint"), dict):
        complaint = data["complaint"]
        feedback = text(complaint.get("complaintFeedbackType"), 16)
        for r in complaint.get("complainedRecipients") or []:
            if not isinstance(r, dict):
                continue
            address = text(r.get("emailAddress"), 320).lower()
            # "not-spam" is a reader taking it back, not a complaint.
            if feedback == "not-spam":
                continue
            reports.append(
                ProviderReport(
                    "ses",
                    f"{base}:{address}",
                    BounceKind.complaint,
                    address,
                    msgid,
                    feedback or "complaint",
                    f"complaint: {feedback or 'unspecified'}",
                )
            )
    return reports
