"""Bounce test support: deliveries to bounce, sample DSN/ARF messages, a reader's state."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import (
    Delivery,
    DeliveryStatus,
    Issue,
    IssueStatus,
    Subscriber,
    Suppression,
)
from app.sends.verp import verp_address

DATA = Path(__file__).parent / "data" / "bounces"


def make_deliveries(ctx: Context, subscriber_ids: list[int], slug: str = "i1") -> list[int]:
    """Create a sent issue with one sent delivery per subscriber; return the delivery ids."""
    with session_scope(ctx.sessions) as session:
        issue = Issue(slug=slug, subject="S", status=IssueStatus.sent)
        session.add(issue)
        session.flush()
        rows = [
            Delivery(issue_id=issue.id, subscriber_id=s, status=DeliveryStatus.sent)
            for s in subscriber_ids
        ]
        session.add_all(rows)
        session.flush()
        for row in rows:
            row.message_id = f"<mp.{issue.id}.{row.id}@morningpost.test>"
        return [r.id for r in rows]


def sample(name: str, ctx: Context, delivery_id: int, rcpt: str, **extra: str) -> bytes:
    """Return a fixture report filled in for one delivery."""
    with session_scope(ctx.sessions) as session:
        msgid = session.get_one(Delivery, delivery_id).message_id or ""
    text = (DATA / name).read_text()
    values = {
        "VERP": verp_address(delivery_id, ctx.settings),
        "RCPT": rcpt,
        "MESSAGE_ID": msgid,
        "FBL": f"bounces@{ctx.settings.verp_domain}",
        **extra,
    }
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    return text.encode()


def subscriber_state(ctx: Context, sub_id: int) -> tuple[str, str | None]:
    """Return (status, suppression reason or None) of a subscriber."""
    with session_scope(ctx.sessions) as session:
        sub = session.get_one(Subscriber, sub_id)
        reason = session.scalar(
            select(Suppression.reason).where(Suppression.email_hash == sub.email_hash)
        )
        return sub.status, reason
