"""Read inbound reports with the stdlib email package: DSNs (RFC 3464) and ARF (RFC 5965)."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr

from app.models import BounceKind

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([245])\d\d\b")
# Headers of a report that may carry the envelope recipient, i.e. our VERP address.
ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To")


@dataclass(frozen=True)
class RecipientReport:
    """One per-recipient outcome: what to record and how to treat the reader."""

    kind: BounceKind
    recipient: str  # Final-Recipient or Original-Recipient address, lower-cased ("" if unknown)
    original_recipient: str
    status_code: str
    diagnostic: str


@dataclass
class InboundReport:
    """What an inbound message says, and the clues to which of our deliveries it concerns."""

    recipients: list[RecipientReport] = field(default_factory=list)
    envelope_candidates: list[str] = field(default_factory=list)  # addresses that may be VERP
    original_message_id: str | None = None
    is_report: bool = False  # a DSN or an ARF report (anything else is ignored)


def _address(value: str | None) -> str:
    """Return the address of an "rfc822; someone@example.org" field, lower-cased."""
    if not value:
        return ""
    text = str(value)
    if ";" in text:
        text = text.partition(";")[2]
    return (parseaddr(text)[1] or text.strip().strip("<>")).strip().lower()


def classify(action: str, status: str, diagnostic: str) -> BounceKind | None:
    """Return the kind of one DSN recipient block, or None when it is not a failure."""
    action = action.strip().lower()
    if action == "delayed":
        return BounceKind.delayed
    if action != "failed":
        return None  # delivered, relayed, expanded: nothing went wrong
    match = _STATUS.search(status) or _STATUS.search(diagnostic)
    if match is None:
        code = _SMTP_CODE.search(diagnostic)
        # No enhanced code: a permanent SMTP reply without detail is treated as soft, so one
        # ambiguous report never removes a reader.
        return BounceKind.soft if code is None or code.group(1) != "2" else None
    klass, subject, detail = match.group(1), match.group(2), match.group(3)
    if subject in ("6", "7") or (subject == "1" and detail in ("7", "8")):
        # Security/policy (X.7.x), content (X.6.x) and bad-sender (X.1.7, X.1.8) refusals are
        # about our mail, not the reader's mailbox: alert the editors, keep the reader.
        return BounceKind.policy
    if klass == "5" and subject == "1":
        return BounceKind.hard  # 5.1.x: no such mailbox or domain
    return BounceKind.soft  # 4.x.x, 5.2.2 (mailbox full) and other failures


def _dsn_recipients(part: Message) -> list[RecipientReport]:
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return []
    out: list[RecipientReport] = []
    for block in blocks[1:]:  # the first block is per-message, the rest per-recipient
        if not isinstance(block, Message):
            continue
        status = str(block.get("Status", "")).strip()
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        kind = classify(str(block.get("Action", "")), status, diagnostic)
        if kind is None:
            continue
        code = _STATUS.search(status) or _STATUS.search(diagnostic)
        out.append(
            RecipientReport(
                kind=kind,
                recipient=_address(block.get("Final-Recipient")),
                original_recipient=_address(block.get("Original-Recipient")),
                status_code=code.group(0) if code else "",
                diagnostic=diagnostic[:500],
            )
        )
    return out


def _original_headers(report: Message) -> Message | None:
    """Return the headers of the returned original message (third part), if any."""
    for part in report.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if ctype in ("text/rfc822-headers", "text/rfc822-header"):
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return BytesHeaderParser().parsebytes(raw)
    return None


def _feedback(part: Message) -> RecipientReport | None:
    """Read the machine-readable part of an ARF report."""
    blocks = part.get_payload()
    if isinstance(blocks, list) and blocks and isinstance(blocks[0], Message):
        fields: Message = blocks[0]
    else:
        raw = part.get_payload(decode=True)
        fields = BytesHeaderParser().parsebytes(raw if isinstance(raw, bytes) else b"")
    feedback_type = str(fields.get("Feedback-Type", "")).strip().lower()
    if feedback_type == "not-spam":
        return None
    # auth-failure says our DKIM/SPF failed at the receiver: our problem, not the reader's.
    kind = BounceKind.policy if feedback_type == "auth-failure" else BounceKind.complaint
    return RecipientReport(
        kind=kind,
        recipient=_address(fields.get("Original-Rcpt-To")),
        original_recipient="",
        status_code=feedback_type[:16],
        diagnostic=f"feedback report: {feedback_type or 'unspecified'}"[:500],
    )


def parse_report(raw: bytes) -> InboundReport:
    """Parse an inbound message into per-recipient outcomes and the clues to our delivery."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    report = InboundReport()
    values = [str(v) for h in ENVELOPE_HEADERS for v in (msg.get_all(h) or [])]
    report.envelope_candidates = [a.lower() for _n, a in getaddresses(values) if a]
    if msg.get_content_type() != "multipart/report":
        return report
    report_type = str(msg.get_param("report-type", "") or "").lower()
    for part in msg.walk():
        ctype = part.get_content_type()
        if report_type == "delivery-status" and ctype in (
            "message/delivery-status",
            "message/global-delivery-status",
        ):
            report.recipients.extend(_dsn_recipients(part))
            report.is_report = True
        elif report_type == "feedback-report" and ctype == "message/feedback-report":
            found = _feedback(part)
            report.is_report = True
            if found is not None:
                report.recipients.append(found)
    original = _original_headers(msg)
    if original is not None:
        msgid = original.get("Message-ID")
        report.original_message_id = str(msgid).strip() if msgid else None
        # The original's Return-Path is the VERP address it was sent with.
        for header in ("Return-Path", "Sender"):
            for value in original.get_all(header) or []:
                report.envelope_candidates.append(_address(str(value)))
    return report
