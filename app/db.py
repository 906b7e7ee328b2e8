"""Engine and session factories; nothing is connected at import time."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

log = logging.getLogger("morningpost.db")

# The execution option that marks a read-only session's connections (see make_read_sessionmaker).
READ_ONLY = "morningpost_read_only"
_WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


# Requests doing database work at once in one web process (MORNINGPOST_WEB_CONCURRENCY).
DEFAULT_CONCURRENCY = 8
# A request that cannot get a connection in this time is answered 503 (app.main), not 500.
POOL_TIMEOUT_SECONDS = 10


def pool_options(concurrency: int = DEFAULT_CONCURRENCY) -> dict[str, Any]:
    """Return the pool size for `concurrency` admitted requests (app.routing).

    Each admitted request may hold two connections (its session and a short one of a helper,
    e.g. a rate limit), the in-process worker and webhook sender a few more: the pool never
    runs dry before the admission gate does. Connections past `pool_size` close when returned.
    """
    return {
        "pool_size": concurrency,
        "max_overflow": concurrency + 16,
        "pool_timeout": POOL_TIMEOUT_SECONDS,
    }


def make_engine(url: str, *, concurrency: int = DEFAULT_CONCURRENCY, **kwargs: Any) -> Engine:
    """Build an engine; SQLite gets WAL, a busy timeout and foreign keys."""
    if "poolclass" not in kwargs and ":memory:" not in url and not url.endswith("://"):
        kwargs = {**pool_options(concurrency), **kwargs}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the worker write while pages read; the busy timeout makes writers queue
            # instead of failing; isolation_level=None hands BEGIN to SQLAlchemy below.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a killed process
            # loses nothing (the WAL is in the OS's hands); only a power cut can lose the last
            # commits. The worker commits every few messages, so this is most of its speed.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.get_execution_options().get(READ_ONLY):
                # A read: a deferred BEGIN takes a snapshot and no lock, so readers never
                # queue behind the writer (or each other) in WAL mode.
                conn.exec_driver_sql("BEGIN")
                return
            # BEGIN IMMEDIATE takes the write lock up front, so two writers never deadlock
            # on a lock upgrade (SQLite's pysqlite default defers it). A deferred transaction
            # that reads and then writes cannot wait for the lock: SQLite refuses the upgrade
            # at once when another writer holds it. So every session that may write takes it
            # here, and only sessions made by `make_read_sessionmaker` do not.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        @event.listens_for(engine, "before_cursor_execute")
        def _read_stays_read(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if conn.get_execution_options().get(READ_ONLY) and _WRITES.match(statement):
                # Upgrading a deferred read fails under any concurrent write: say where.
                log.warning("a read-only session wrote; use a write session: %.80s", statement)

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory every caller uses."""
    return sessionmaker(engine, expire_on_commit=False)


def make_read_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return a factory of sessions that only read: on SQLite they never take the write lock."""
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Run a unit of work: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class OnThread:
    """Run fn(session) in one transaction each, on a thread (sessions are synchronous)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    async def __call__(self, fn: Callable[[Session], T]) -> T:
        """Run fn(session) in its own transaction on a thread; return what it returned."""

        def work() -> T:
            with session_scope(self.factory) as session:
                return fn(session)

        return await asyncio.to_thread(work)


def is_postgres(engine: Engine) -> bool:
    """Tell whether row locking with SKIP LOCKED is available."""
    return engine.dialect.name == "postgresql"
