"""Sign-up rate limits in the database, and the purge of never-confirmed sign-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.context import Context
from app.db import session_scope
from app.models import OutboxKind, OutboxMessage, RateLimitHit, Subscriber, SubscriberStatus
from app.ratelimit import SIGNUP_PER_ADDRESS, Limit, check_signup, hit, prune
from app.subscribers.purge import purge_unconfirmed
from app.tokens import hash_secret

T0 = datetime(2026, 12, 7, 6, 0, 0, tzinfo=UTC)  # on a window boundary


def test_sliding_window_counts_and_says_when_to_retry(ctx: Context) -> None:
    limit = Limit("t", 3, 60)
    with session_scope(ctx.sessions) as session:
        assert [hit(session, limit, "1.2.3.4", T0).allowed for _ in range(3)] == [True] * 3
        denied = hit(session, limit, "1.2.3.4", T0 + timedelta(seconds=10))
        assert not denied.allowed and 50 <= denied.retry_after <= 120
        assert hit(session, limit, "5.6.7.8", T0).allowed  # another subject, another count
        # Half way into the next window half of the previous one still counts (4 * 0.5 = 2).
        assert hit(session, limit, "1.2.3.4", T0 + timedelta(seconds=90)).allowed
        assert not hit(session, limit, "1.2.3.4", T0 + timedelta(seconds=91)).allowed
        # Two windows later everything has slid out.
        assert hit(session, limit, "1.2.3.4", T0 + timedelta(seconds=180)).allowed
        keys = session.scalars(select(RateLimitHit.key)).all()
        assert all(len(k) == 64 and "1.2.3.4" not in k for k in keys)


def test_check_signup_commits_on_its_own_and_takes_the_worst(ctx: Context) -> None:
    results = [
        check_signup(ctx.sessions, "10.0.0.1", "Someone@Example.org", T0)
        for _ in range(SIGNUP_PER_ADDRESS.count + 1)
    ]
    assert [r.allowed for r in results] == [True] * SIGNUP_PER_ADDRESS.count + [False]
    assert results[-1].retry_after > 0
    # Another address from the same IP is still fine; the IP limit is higher.
    assert check_signup(ctx.sessions, "10.0.0.1", "other@example.org", T0).allowed
    assert check_signup(ctx.sessions, None, None, T0).allowed
    with session_scope(ctx.sessions) as session:
        assert prune(session, T0 + timedelta(days=3)) == 3
        assert session.scalar(select(func.count()).select_from(RateLimitHit)) == 0


def test_purge_removes_only_old_never_confirmed_signups(ctx: Context) -> None:
    now = T0
    old = now - timedelta(days=10)
    rows = {
        "old-pending": (SubscriberStatus.pending, old, old, None),
        "new-pending": (SubscriberStatus.pending, now - timedelta(hours=1), None, None),
        "old-but-resent": (SubscriberStatus.pending, old, now - timedelta(hours=2), None),
        "reconfirming": (SubscriberStatus.pending, old, old, old),
        "active": (SubscriberStatus.active, old, old, old),
    }
    with session_scope(ctx.sessions) as session:
        for name, (status, created, sent, confirmed) in rows.items():
            sub = Subscriber(
                email=f"{name}@example.org",
                email_hash=hash_secret(f"{name}@example.org"),
                status=status,
                created_at=created,
                confirmation_sent_at=sent,
                confirmed_at=confirmed,
            )
            session.add(sub)
            session.flush()
            session.add(
                OutboxMessage(kind=OutboxKind.confirm, to_address=sub.email, subscriber_id=sub.id)
            )
    with session_scope(ctx.sessions) as session:
        assert purge_unconfirmed(session, timedelta(days=7), now) == 1
    with session_scope(ctx.sessions) as session:
        left = set(session.scalars(select(Subscriber.email)))
        assert left == {f"{n}@example.org" for n in rows} - {"old-pending@example.org"}
        outbox = set(session.scalars(select(OutboxMessage.to_address)))
        assert "old-pending@example.org" not in outbox and len(outbox) == 4
