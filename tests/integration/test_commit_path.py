"""One commit path (store/commit.py): each fast path writes what the pooled path writes."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, text

from app.context import Context
from app.db import session_scope
from app.models import utcnow
from app.sends.policy import Outcome, RetryPolicy
from app.sends.store import ledger
from app.sends.store.commit import (
    DriverStatement,
    PooledPath,
    commit_statement,
    hand_over_statement,
    record_statement,
)
from app.sends.store.ledger import Result
from app.sends.store.paths import commit_path
from app.sends.store.rows import D
from tests.delivery_support import add_issue, add_subscribers, send_now


def _claimed(ctx: Context, emails: list[str], owner: str = "w1") -> dict[str, int]:
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    with session_scope(ctx.sessions) as s:
        claims = ledger.claim_batch(s, owner, 100, utcnow(), 60)
    return {c.email.split("@")[0]: c.delivery_id for c in claims}


def _raw(ctx: Context, delivery_id: int, column: str) -> object:
    with ctx.engine.connect() as conn:
        return conn.execute(
            text(f"SELECT {column} FROM deliveries WHERE id = :id"), {"id": delivery_id}
        ).scalar()


def test_driver_statements_refuse_expanding_parameters(ctx: Context) -> None:
    dialect = ctx.engine.dialect
    name = dialect.name
    statements = [hand_over_statement(name), record_statement(name, D.name, True)]
    if name == "postgresql":
        statements.append(commit_statement())
    for stmt in statements:
        # Compiled once, run as is: nothing of SQLAlchemy's own rendering is left to rewrite.
        assert "POSTCOMPILE" not in DriverStatement(stmt, dialect).sql
    expanding = select(D.c.id).where(D.c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="expanding"):
        DriverStatement(expanding, dialect)


async def test_the_fast_path_stores_rows_exactly_as_the_pooled_path(ctx: Context) -> None:
    ids = _claimed(ctx, ["a", "b", "c", "d", "e", "f"])
    now = utcnow()
    policy = RetryPolicy()
    fast = commit_path(ctx.engine, "w1", policy)
    assert not isinstance(fast, PooledPath)  # SQLite's driver path or PostgreSQL's async one
    results = [
        Result(ids["a"], 1, Outcome.sent, "250 2.0.0 queued"),
        Result(ids["b"], 1, Outcome.retry, "451 try later"),
        Result(ids["c"], 1, Outcome.failed, "550 no such user"),
    ]
    try:
        assert await fast.commit(results, [ids["d"]], now) == {ids["d"]}
    finally:
        fast.close()
    pooled = PooledPath(ctx.engine, "w1", policy)
    try:
        marked = await pooled.commit([Result(ids["e"], 1, Outcome.sent, "250 ok")], [ids["f"]], now)
    finally:
        pooled.close()
    assert marked == {ids["f"]}
    for fast_row, pooled_row, column in [
        ("a", "e", "sent_at"),
        ("a", "e", "updated_at"),
        ("a", "e", "status"),
        ("d", "f", "handed_at"),
    ]:
        value = _raw(ctx, ids[fast_row], column)
        assert value is not None
        # The very same stored value, so comparisons in SQL and reads through the ORM agree.
        assert value == _raw(ctx, ids[pooled_row], column), column
    assert _raw(ctx, ids["b"], "status") == "retry"
    assert _raw(ctx, ids["b"], "sent_at") is None
    assert _raw(ctx, ids["c"], "status") == "failed"
    assert _raw(ctx, ids["c"], "last_reply") == "550 no such user"
    assert _raw(ctx, ids["d"], "status") == "sending"  # handed over, not yet recorded
    assert _raw(ctx, ids["a"], "lease_expires_at") is None


async def test_the_fast_path_is_fenced_by_the_lease(ctx: Context) -> None:
    ids = _claimed(ctx, ["a", "b"], owner="w1")
    other = commit_path(ctx.engine, "someone-else", RetryPolicy())
    try:
        marked = await other.commit(
            [Result(ids["a"], 1, Outcome.sent, "250 ok")], [ids["b"]], utcnow()
        )
    finally:
        other.close()
    assert marked == set()
    assert _raw(ctx, ids["a"], "status") == "sending"  # not its lease: not written
    assert _raw(ctx, ids["b"], "handed_at") is None


async def test_the_fast_path_stores_any_reply_and_retry_time_exactly(ctx: Context) -> None:
    # PostgreSQL's path passes its arrays as text literals: quoting must not bend a reply.
    ids = _claimed(ctx, ["a", "b", "c", "d"])
    now = utcnow()
    policy = RetryPolicy()
    odd = ['550 "no" \\ such {user}, NULL', "", "NULL", '452 {a,b} \\\\ "x"']
    fast = commit_path(ctx.engine, "w1", policy)
    try:
        results = [
            Result(ids["a"], 1, Outcome.failed, odd[0]),
            Result(ids["b"], 1, Outcome.failed, odd[1]),
            Result(ids["c"], 1, Outcome.failed, odd[2]),
            Result(ids["d"], 2, Outcome.retry, odd[3]),
        ]
        assert await fast.commit(results, [], now) == set()
    finally:
        fast.close()
    for name, reply in zip("abcd", odd, strict=True):
        assert _raw(ctx, ids[name], "last_reply") == reply
    with session_scope(ctx.sessions) as s:
        stored = s.scalar(select(D.c.next_attempt_at).where(D.c.id == ids["d"]))
    assert stored == policy.next_attempt(now, 2)


async def test_many_commits_of_every_size_on_one_connection_write_exactly(ctx: Context) -> None:
    # PostgreSQL plans the prepared commit statement once for its connection (generic plan):
    # groups of 0–6 rows, twelve commits in a row, one row taken over by another worker
    # half-way, must each mark exactly the rows still ours and record exactly their results.
    names = [f"r{i:02d}" for i in range(40)]
    ids = _claimed(ctx, names)
    order = [ids[n] for n in names]
    with ctx.engine.begin() as conn:  # another worker took this lease over
        conn.execute(
            text("UPDATE deliveries SET lease_owner = 'w2' WHERE id = :id"), {"id": order[20]}
        )
    fast = commit_path(ctx.engine, "w1", RetryPolicy())
    sizes = [1, 6, 0, 3, 2, 5, 4, 1, 6, 3, 2, 4]
    previous: list[int] = []
    position = 0
    try:
        for size in sizes:
            handed = order[position : position + size]
            position += size
            results = [Result(i, 1, Outcome.sent, f"250 ok {i}") for i in previous]
            marked = await fast.commit(results, handed, utcnow())
            assert marked == set(handed) - {order[20]}
            previous = sorted(marked)
        assert (
            await fast.commit(
                [Result(i, 1, Outcome.sent, "250 last") for i in previous], [], utcnow()
            )
            == set()
        )
    finally:
        fast.close()
    for i in order[:position]:
        expected = "sending" if i == order[20] else "sent"
        assert _raw(ctx, i, "status") == expected, i
    assert _raw(ctx, order[20], "handed_at") is None
    assert all(_raw(ctx, i, "status") == "sending" for i in order[position:])
    assert all(_raw(ctx, i, "handed_at") is None for i in order[position:])
