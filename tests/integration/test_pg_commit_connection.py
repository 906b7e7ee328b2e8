"""PostgreSQL's commit connection (store/pg.py): read on the event loop, it survives what a
connection meets: a commit whose caller gives up, a refused statement, a server that hangs up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from app.context import Context
from app.db import session_scope
from app.models import utcnow
from app.sends.policy import Outcome, RetryPolicy
from app.sends.store import ledger
from app.sends.store.ledger import Result
from app.sends.store.pg import PostgresPath, numbered
from tests.delivery_support import add_issue, add_subscribers, send_now


@pytest.fixture
def pg(ctx: Context) -> Context:
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's own commit path")
    return ctx


@pytest.fixture
def path(pg: Context) -> Iterator[PostgresPath]:
    """The worker w1's commit path, closed after the test."""
    commits = PostgresPath(pg.engine, "w1", RetryPolicy())
    yield commits
    commits.close()


def _claimed(ctx: Context, n: int) -> list[int]:
    add_subscribers(ctx, [f"r{i:02d}" for i in range(n)])
    send_now(ctx, add_issue(ctx))
    with session_scope(ctx.sessions) as s:
        return sorted(c.delivery_id for c in ledger.claim_batch(s, "w1", 100, utcnow(), 60))


def _column(ctx: Context, column: str, ids: list[int]) -> list[object]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT id, {column} FROM deliveries WHERE id = ANY(:ids) ORDER BY id"),
            {"ids": ids},
        )
        return [value for _, value in rows]


def test_binds_become_numbered_parameters_in_order_of_first_use() -> None:
    sql, names = numbered("SELECT %(a)s, %(b)s, %(a)s WHERE x LIKE 'y%%'")
    assert sql == b"SELECT $1, $2, $1 WHERE x LIKE 'y%'"
    assert names == ["a", "b"]


async def test_a_cancelled_commit_still_lands_and_the_next_one_waits_for_it(
    pg: Context, path: PostgresPath
) -> None:
    ids = _claimed(pg, 4)
    await path.commit([], [], utcnow())  # opens the connection
    first = asyncio.create_task(path.commit([], ids[:2], utcnow()))
    await asyncio.sleep(0)  # sent: the reply has not been read yet
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    # The statement was on the wire: the server finishes it; the next commit reads its
    # reply first instead of mistaking it for its own.
    results = [Result(i, 1, Outcome.sent, "250 ok") for i in ids[:2]]
    assert await path.commit(results, ids[2:], utcnow()) == set(ids[2:])
    assert _column(pg, "status", ids) == ["sent", "sent", "sending", "sending"]
    assert all(_column(pg, "handed_at", ids))


async def test_a_refused_commit_raises_writes_nothing_and_the_next_one_works(
    pg: Context, path: PostgresPath
) -> None:
    ids = _claimed(pg, 2)
    # PostgreSQL refuses a NUL byte in text: the whole statement fails.
    with pytest.raises(psycopg.Error):
        await path.commit([Result(ids[0], 1, Outcome.sent, "250 \x00")], [ids[1]], utcnow())
    assert _column(pg, "status", ids) == ["sending", "sending"]
    assert _column(pg, "handed_at", ids) == [None, None]
    assert await path.commit([], [ids[1]], utcnow()) == {ids[1]}


async def test_a_server_that_hangs_up_fails_one_commit_and_the_next_reconnects(
    pg: Context, path: PostgresPath
) -> None:
    ids = _claimed(pg, 3)
    assert await path.commit([], [ids[0]], utcnow()) == {ids[0]}
    with pg.engine.begin() as conn:  # an administrator (or a failover) ends the session
        ended = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND query LIKE '%handed_at%'"
            )
        ).all()
    assert ended == [(True,)]
    results = [Result(ids[0], 1, Outcome.sent, "250 ok")]
    with pytest.raises(psycopg.Error):
        await path.commit(results, [ids[1]], utcnow())
    assert await path.commit(results, [ids[1]], utcnow()) == {ids[1]}
    assert _column(pg, "status", ids) == ["sent", "sending", "sending"]
    assert _column(pg, "handed_at", ids)[2] is None


async def test_a_commit_on_a_connection_already_gone_raises_and_the_next_reconnects(
    pg: Context, path: PostgresPath
) -> None:
    ids = _claimed(pg, 2)
    assert await path.commit([], [ids[0]], utcnow()) == {ids[0]}
    assert path._conn is not None
    path._conn.close()  # gone before the next statement is even sent
    with pytest.raises(psycopg.Error):
        await asyncio.wait_for(path.commit([], [ids[1]], utcnow()), 10)
    assert await asyncio.wait_for(path.commit([], [ids[1]], utcnow()), 10) == {ids[1]}


async def test_a_path_moves_with_its_event_loop(pg: Context, path: PostgresPath) -> None:
    ids = _claimed(pg, 2)
    assert await path.commit([], [ids[0]], utcnow()) == {ids[0]}

    def in_another_loop() -> set[int] | None:
        return asyncio.run(path.commit([], [ids[1]], utcnow()))

    # A new loop (a worker restarted in the same process): a new connection, same rows.
    assert await asyncio.to_thread(in_another_loop) == {ids[1]}
