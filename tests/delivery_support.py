"""Helpers shared by the delivery tests: seed subscribers and issues, start sends, read rows."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import Delivery, Issue, Subscriber, SubscriberStatus, utcnow
from app.rendering.blocks import parse_blocks
from app.sends.store import ledger
from app.sends.store.sends import start_send
from app.tokens import hash_secret
from tests.conftest import PG_URL

BLOCKS = [
    {"type": "lead", "title": "Models got smaller", "body": "Small **models** are back."},
    {"type": "markdown", "body": "A [link](https://example.org/a) and some words."},
    {"type": "subscribe", "title": "Tell a friend", "body": "Scan the code to subscribe."},
]


def add_subscribers(ctx: Context, emails: list[str], status: str = "active") -> list[int]:
    """Create subscribers with the given status and return their ids."""
    with session_scope(ctx.sessions) as s:
        rows = [
            Subscriber(email=e, email_hash=hash_secret(e), name="", status=status) for e in emails
        ]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def add_issue(ctx: Context, slug: str = "issue-1", subject: str = "Morning news") -> int:
    """Create a draft issue and return its id."""
    with session_scope(ctx.sessions) as s:
        issue = Issue(slug=slug, subject=subject, preheader="Today", blocks=parse_blocks(BLOCKS))
        s.add(issue)
        s.flush()
        return issue.id


def send_now(ctx: Context, issue_id: int) -> int:
    """Start the send the way POST /issues/{id}/send does; return the recipient count."""
    with session_scope(ctx.sessions) as s:
        return start_send(s, issue_id, utcnow())


def deliveries(ctx: Context, issue_id: int) -> dict[str, Delivery]:
    """Return the issue's delivery rows by subscriber email."""
    with session_scope(ctx.sessions) as s:
        rows = s.execute(
            select(Delivery, Subscriber.email)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.issue_id == issue_id)
        ).all()
        return {email: d for d, email in rows}


def unsent(ctx: Context, issue_id: int) -> list[tuple[object, ...]]:
    """Describe the issue's deliveries not sent (status, attempts, lease, hand-over, reply)."""
    d = Delivery
    with session_scope(ctx.sessions) as s:
        rows = s.execute(
            select(d.id, d.status, d.attempts, d.lease_owner, d.handed_at, d.last_reply).where(
                d.issue_id == issue_id, d.status != "sent"
            )
        )
        return [tuple(r) for r in rows]


def stats(ctx: Context, issue_id: int) -> dict[str, int]:
    """Return the issue's delivery counts."""
    with session_scope(ctx.sessions) as s:
        return ledger.issue_stats(s, issue_id)


def subscriber_status(ctx: Context, email: str) -> str:
    """Return a subscriber's status."""
    with session_scope(ctx.sessions) as s:
        return s.scalars(select(Subscriber.status).where(Subscriber.email == email)).one()


ACTIVE = SubscriberStatus.active


pg_only = pytest.mark.skipif(
    not PG_URL, reason="several workers need PostgreSQL (SKIP LOCKED); SQLite is single-worker"
)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> list[str]:
    """SIGTERM every live worker, wait, and return their stderr tails."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    tails = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        tails.append(err.decode(errors="replace")[-1500:])
    return tails


def wait_until(predicate: object, timeout: float) -> bool:
    """Poll `predicate()` until it is true or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False
