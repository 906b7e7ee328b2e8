"""Sequence test support: a confirmed reader of a newsletter."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.context import Context
from app.db import session_scope
from app.models import Issue, Subscriber
from app.rendering.blocks import parse_blocks
from app.tokens import hash_secret
from tests.helpers import SIMPLE_BLOCKS


def confirmed(
    ctx: Context, count: int, start: datetime, spread: timedelta, tag: str = ""
) -> list[int]:
    """Insert active readers who confirmed at `start`, `start + spread`, …; return their ids."""
    with session_scope(ctx.sessions) as session:
        rows = [
            Subscriber(
                email=f"seq{tag}{i}@example.org",
                email_hash=hash_secret(f"seq{tag}{i}@example.org"),
                status="active",
                consent_source="test",
                confirmed_at=start + spread * i,
            )
            for i in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def drafts(ctx: Context, *subjects: str) -> list[int]:
    """Create draft issues with these subjects; return their ids."""
    with session_scope(ctx.sessions) as session:
        rows = [
            Issue(slug=f"draft-{n}", subject=s, blocks=parse_blocks(SIMPLE_BLOCKS))
            for n, s in enumerate(subjects)
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]
