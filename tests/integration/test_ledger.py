"""The ledger on its own: freeze, claim, fence, expire, release, cancel, finish."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import delete, update

from app.context import Context
from app.db import session_scope
from app.models import Issue, Subscriber, Suppression, utcnow
from app.sends.policy import Outcome, RetryPolicy, is_hard_bounce
from app.sends.store import lease, ledger, sends
from app.sends.store.ledger import Result
from app.tokens import hash_secret
from tests.delivery_support import add_issue, add_subscribers, deliveries, send_now, stats


def claim(ctx: Context, owner: str = "w1", limit: int = 100, lease: int = 60, now=None):  # type: ignore[no-untyped-def]
    with session_scope(ctx.sessions) as s:
        return ledger.claim_batch(s, owner, limit, now or utcnow(), lease)


def test_freeze_skips_suppressed_paused_inactive_and_is_idempotent(ctx: Context) -> None:
    add_subscribers(ctx, ["a@x.org", "sup@x.org", "paused@x.org", "was@x.org"])
    add_subscribers(ctx, ["pend@x.org"], status="pending")
    with session_scope(ctx.sessions) as s:
        s.add(Suppression(email_hash=hash_secret("sup@x.org"), reason="manual"))
        s.execute(
            update(Subscriber)
            .where(Subscriber.email == "paused@x.org")
            .values(paused_until=utcnow() + timedelta(days=3))
        )
        s.execute(
            update(Subscriber)
            .where(Subscriber.email == "was@x.org")
            .values(paused_until=utcnow() - timedelta(days=3))
        )
    issue_id = add_issue(ctx)
    assert send_now(ctx, issue_id) == 2
    with session_scope(ctx.sessions) as s:
        assert ledger.freeze_recipients(s, issue_id) == 0
    assert set(deliveries(ctx, issue_id)) == {"a@x.org", "was@x.org"}


def test_claim_cancels_rows_whose_subscriber_left(ctx: Context) -> None:
    add_subscribers(ctx, ["stay@x.org", "left@x.org", "erased@x.org", "sup@x.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    with session_scope(ctx.sessions) as s:
        s.execute(
            update(Subscriber).where(Subscriber.email == "left@x.org").values(status="unsubscribed")
        )
        s.execute(delete(Subscriber).where(Subscriber.email == "erased@x.org"))
        s.add(Suppression(email_hash=hash_secret("sup@x.org"), reason="complaint"))
    claims = claim(ctx)
    assert [c.email for c in claims] == ["stay@x.org"]
    assert claims[0].attempts == 1
    rows = deliveries(ctx, issue_id)
    assert rows["left@x.org"].status == "cancelled"
    assert "unsubscribed" in (rows["left@x.org"].last_reply or "")
    assert rows["sup@x.org"].status == "cancelled"
    assert stats(ctx, issue_id)["cancelled"] == 3  # the erased one too (subscriber_id now NULL)


def test_a_large_claim_pairs_every_row_with_its_own_reader(ctx: Context) -> None:
    """The batch's readers are read by one parameter (an array, or JSON on SQLite), not an
    IN list: every claimed row still gets its own reader's address, name and attributes,
    with the attributes as stored and decoded only when asked for."""
    emails = [f"r{i}@x.org" for i in range(1, 601)]
    ids = add_subscribers(ctx, emails)
    with session_scope(ctx.sessions) as s:
        for n, sid in enumerate(ids, start=1):
            if n % 3 == 0:
                s.execute(
                    update(Subscriber)
                    .where(Subscriber.id == sid)
                    .values(name=f"Reader {n}", attributes={"n": n, "company": f"Co {n}"})
                )
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    claims = claim(ctx, limit=1000)
    assert len(claims) == 600
    by_email = {c.email: c for c in claims}
    assert set(by_email) == set(emails)
    for n, email in enumerate(emails, start=1):
        c = by_email[email]
        assert c.subscriber_id == ids[n - 1]
        attributes = c.reader_attributes()
        if n % 3 == 0:
            assert c.name == f"Reader {n}"
            assert attributes == {"n": n, "company": f"Co {n}"}
        else:
            assert c.name == ""
            assert not attributes


def test_claim_only_due_rows_of_sending_issues(ctx: Context) -> None:
    add_subscribers(ctx, ["a@x.org", "b@x.org"])
    draft = add_issue(ctx, slug="draft")
    issue_id = add_issue(ctx, slug="live")
    send_now(ctx, issue_id)
    first = claim(ctx, limit=1)
    assert len(first) == 1
    assert claim(ctx, owner="w2", limit=5)[0].delivery_id != first[0].delivery_id
    assert claim(ctx, owner="w3") == []
    assert stats(ctx, draft)["recipients"] == 0


def test_fenced_record_ignores_a_lost_lease(ctx: Context) -> None:
    add_subscribers(ctx, ["a@x.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    (c,) = claim(ctx, owner="old", lease=5)
    later = utcnow() + timedelta(seconds=30)
    with session_scope(ctx.sessions) as s:
        lease.hand_over(s, "old", [c.delivery_id], utcnow())
    with session_scope(ctx.sessions) as s:
        assert lease.expire_leases(s, later) == lease.Expired(requeued=0, unknown=1)
    assert deliveries(ctx, issue_id)["a@x.org"].status == "unknown"
    with session_scope(ctx.sessions) as s:
        ledger.record_results(s, "old", [Result(c.delivery_id, 1, Outcome.sent, "250 ok")], later)
        # A stranger's write is fenced out too.
        ledger.record_results(s, "other", [Result(c.delivery_id, 1, Outcome.sent, "250")], later)
    row = deliveries(ctx, issue_id)["a@x.org"]
    assert row.status == "unknown"
    assert row.sent_at is None


def test_expiry_requeues_claimed_rows_never_handed_to_smtp(ctx: Context) -> None:
    """Issue 10, item 2: the crash window is what was on the wire, not the whole claim."""
    add_subscribers(ctx, ["a@x.org", "b@x.org", "c@x.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    a, _, _ = claim(ctx, owner="dead", lease=5)
    with session_scope(ctx.sessions) as s:
        lease.hand_over(s, "dead", [a.delivery_id], utcnow())
    later = utcnow() + timedelta(seconds=30)
    with session_scope(ctx.sessions) as s:
        assert lease.expire_leases(s, utcnow()) == lease.Expired()  # still leased
        assert lease.expire_leases(s, later) == lease.Expired(requeued=2, unknown=1)
    rows = deliveries(ctx, issue_id)
    assert rows["a@x.org"].status == "unknown"
    assert rows["b@x.org"].status == rows["c@x.org"].status == "pending"
    assert rows["b@x.org"].attempts == 0  # the claim did not count as an attempt
    # A dead worker named by its owner id gives its rows back at once, lease or not.
    assert claim(ctx, owner="gone", lease=300)
    with session_scope(ctx.sessions) as s:
        assert lease.expire_leases(s, utcnow(), ["gone"]).requeued >= 1
    assert deliveries(ctx, issue_id)["b@x.org"].status == "pending"


def test_release_returns_rows_to_pending_or_retry(ctx: Context) -> None:
    add_subscribers(ctx, ["a@x.org", "b@x.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    a, b = claim(ctx)
    now = utcnow()
    with session_scope(ctx.sessions) as s:
        ledger.record_results(s, "w1", [Result(b.delivery_id, 1, Outcome.retry, "451")], now)
    (b2,) = claim(ctx, owner="w2", now=now + timedelta(hours=2))
    with session_scope(ctx.sessions) as s:
        ledger.release(s, "w1", [a.delivery_id])
        ledger.release(s, "w2", [b2.delivery_id])
        ledger.release(s, "w1", [b2.delivery_id])  # not ours any more: no effect
    rows = deliveries(ctx, issue_id)
    assert (rows["a@x.org"].status, rows["a@x.org"].attempts) == ("pending", 0)
    assert (rows["b@x.org"].status, rows["b@x.org"].attempts) == ("retry", 1)
    assert rows["a@x.org"].lease_owner is None


def test_retry_backoff_is_exponential_and_capped() -> None:
    policy = RetryPolicy(backoff_seconds=60, max_attempts=10)
    now = utcnow()
    assert policy.next_attempt(now, 1) - now == timedelta(seconds=60)
    assert policy.next_attempt(now, 3) - now == timedelta(seconds=240)
    assert policy.next_attempt(now, 9) - now == timedelta(hours=1)


def test_hard_bounce_detection() -> None:
    assert is_hard_bounce("5.1.1 No such user")
    assert is_hard_bounce("550 5.1.10 Null MX")
    assert not is_hard_bounce("5.7.1 Policy")
    assert not is_hard_bounce("4.1.1 later")


def test_cancel_open_and_finish(ctx: Context) -> None:
    add_subscribers(ctx, ["a@x.org", "b@x.org", "c@x.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    (c,) = claim(ctx, limit=1)
    with session_scope(ctx.sessions) as s:
        assert ledger.cancel_open(s, issue_id) == 2
        assert sends.finish_issues(s, utcnow()) == []  # one is still in flight
        ledger.record_results(s, "w1", [Result(c.delivery_id, 1, Outcome.sent, "250")], utcnow())
        assert sends.finish_issues(s, utcnow()) == [issue_id]
    with session_scope(ctx.sessions) as s:
        assert s.get(Issue, issue_id).status == "sent"  # type: ignore[union-attr]
    assert stats(ctx, issue_id) == {
        "recipients": 3, "pending": 0, "sending": 0, "sent": 1, "retry": 0,
        "failed": 0, "unknown": 0, "cancelled": 2,
    }  # fmt: skip


def test_a_row_taken_over_is_never_handed_over_by_its_old_owner(ctx: Context) -> None:
    """The hand-over is fenced like the result: a stalled worker whose lease moved on gets
    nothing marked, and only marked rows go on the wire (no second copy)."""
    add_subscribers(ctx, ["a@x.org", "b@x.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    a, b = claim(ctx, owner="stalled", lease=5)
    with session_scope(ctx.sessions) as s:
        # Judged dead: its leases go back to the queue and a live worker claims them.
        assert lease.expire_leases(s, utcnow(), ["stalled"]).requeued == 2
    assert {c.delivery_id for c in claim(ctx, owner="live")} == {a.delivery_id, b.delivery_id}
    with session_scope(ctx.sessions) as s:
        assert lease.hand_over(s, "stalled", [a.delivery_id, b.delivery_id], utcnow()) == set()
        assert lease.hand_over(s, "live", [a.delivery_id], utcnow()) == {a.delivery_id}
    rows = deliveries(ctx, issue_id)
    assert rows["a@x.org"].lease_owner == "live" and rows["a@x.org"].handed_at is not None
    assert rows["b@x.org"].handed_at is None


def test_resend_unknown_racing_the_sends_finish_leaves_the_send_open(ctx: Context) -> None:
    """An editor's resend-unknown and a worker finishing the send, at the same moment: the
    rows queued again are sent (the issue stays `sending`), never stranded on a `sent` one."""
    add_subscribers(ctx, ["a@x.org", "b@x.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    rows = claim(ctx)
    with session_scope(ctx.sessions) as s:  # one sent, one lost in a crash
        ledger.record_results(
            s,
            "w1",
            [
                Result(rows[0].delivery_id, 1, Outcome.sent, "250"),
                Result(rows[1].delivery_id, 1, Outcome.unknown, "connection lost"),
            ],
            utcnow(),
        )
    editor = ctx.sessions()
    try:
        assert sends.requeue_unknown(editor, issue_id, utcnow()) == 1  # not committed yet
        finished: list[list[int]] = []

        def worker_finishes() -> None:
            with session_scope(ctx.sessions) as s:
                finished.append(sends.finish_issues(s, utcnow()))

        worker = threading.Thread(target=worker_finishes)
        worker.start()
        worker.join(0.5)  # PostgreSQL: it waits for the issue's row; SQLite: for the lock
        editor.commit()
    finally:
        editor.close()
    worker.join(30)
    assert finished == [[]]
    with session_scope(ctx.sessions) as s:
        assert s.get_one(Issue, issue_id).status == "sending"
    assert stats(ctx, issue_id)["retry"] == 1
