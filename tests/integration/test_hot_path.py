"""The worker's hot transaction on SQLite (store/hot.py) writes what the pooled path writes."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from app.context import Context
from app.db import is_postgres, session_scope
from app.models import utcnow
from app.sends.policy import Outcome, RetryPolicy
from app.sends.store import lease, ledger
from app.sends.store.hot import SQLiteHotPath
from app.sends.store.ledger import Result
from app.sends.store.rows import D
from tests.delivery_support import add_issue, add_subscribers, deliveries, send_now


@pytest.fixture
def sqlite_only(ctx: Context) -> None:
    if is_postgres(ctx.engine):
        pytest.skip("the hot path is SQLite's; PostgreSQL commits on a thread")


def _claimed(ctx: Context, emails: list[str], owner: str = "w1") -> dict[str, int]:
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    with session_scope(ctx.sessions) as s:
        claims = ledger.claim_batch(s, owner, 100, utcnow(), 60)
    return {c.email: c.delivery_id for c in claims}


def _raw(ctx: Context, delivery_id: int, column: str) -> object:
    with ctx.engine.connect() as conn:
        return conn.execute(
            text(f"SELECT {column} FROM deliveries WHERE id = :id"), {"id": delivery_id}
        ).scalar()


@pytest.mark.usefixtures("sqlite_only")
def test_hot_path_stores_rows_exactly_as_the_pooled_path(ctx: Context) -> None:
    ids = _claimed(ctx, ["a@x.org", "b@x.org", "c@x.org", "d@x.org", "e@x.org"])
    now = utcnow()
    policy = RetryPolicy()
    hot = SQLiteHotPath(ctx.engine, "w1", policy)
    results = [
        Result(ids["a@x.org"], 1, Outcome.sent, "250 2.0.0 queued"),
        Result(ids["b@x.org"], 1, Outcome.retry, "451 try later"),
    ]
    marked = hot.run(results, [ids["c@x.org"]], now)
    hot.close()
    assert marked == {ids["c@x.org"]}
    # The same through SQLAlchemy, for the row next to it.
    with ctx.engine.begin() as conn:
        ledger.record_rows(
            conn, D, "w1", [Result(ids["d@x.org"], 1, Outcome.sent, "250 ok")], now, policy
        )
        lease.hand_over(conn, "w1", [ids["e@x.org"]], now)
    pairs = [("a", "d", "sent_at"), ("a", "d", "updated_at"), ("c", "e", "handed_at")]
    for hot_row, orm_row, column in pairs:
        hot_value = _raw(ctx, ids[f"{hot_row}@x.org"], column)
        assert hot_value is not None
        # The very same text, so comparisons in SQL and reads through the ORM agree.
        assert hot_value == _raw(ctx, ids[f"{orm_row}@x.org"], column), column
    rows = deliveries(ctx, next(iter(_issue_ids(ctx))))
    assert rows["a@x.org"].status == "sent" and rows["a@x.org"].sent_at == now
    assert rows["b@x.org"].status == "retry"
    assert rows["b@x.org"].next_attempt_at == policy.next_attempt(now, 1)
    assert rows["c@x.org"].status == "sending"


def _issue_ids(ctx: Context) -> set[int]:
    with ctx.engine.connect() as conn:
        return {i for (i,) in conn.execute(text("SELECT DISTINCT issue_id FROM deliveries"))}


@pytest.mark.usefixtures("sqlite_only")
def test_hot_path_is_fenced_by_the_lease(ctx: Context) -> None:
    ids = _claimed(ctx, ["a@x.org", "b@x.org"], owner="w1")
    hot = SQLiteHotPath(ctx.engine, "someone-else", RetryPolicy())
    marked = hot.run(
        [Result(ids["a@x.org"], 1, Outcome.sent, "250 ok")], [ids["b@x.org"]], utcnow()
    )
    hot.close()
    assert marked == set()
    assert _raw(ctx, ids["a@x.org"], "status") == "sending"  # not its lease: not written
    assert _raw(ctx, ids["b@x.org"], "handed_at") is None


@pytest.mark.usefixtures("sqlite_only")
def test_hot_path_steps_aside_when_another_writer_holds_the_lock(ctx: Context) -> None:
    ids = _claimed(ctx, ["a@x.org"])
    path = ctx.engine.url.database
    assert path
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # e.g. a CSV import in the web process
    hot = SQLiteHotPath(ctx.engine, "w1", RetryPolicy())
    try:
        # None: the caller takes the pooled path on a thread, which waits its turn.
        assert hot.run([], [ids["a@x.org"]], utcnow()) is None
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert hot.run([], [ids["a@x.org"]], utcnow()) == {ids["a@x.org"]}
    hot.close()
    # Its own busy_timeout=0 never reaches the pool's connections.
    with ctx.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
