"""Engine and session factories; nothing is connected at import time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Build an engine; SQLite gets WAL, a busy timeout and foreign keys."""
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
            # BEGIN IMMEDIATE takes the write lock up front, so two writers never deadlock
            # on a lock upgrade (SQLite's pysqlite default defers it).
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory every caller uses."""
    return sessionmaker(engine, expire_on_commit=False)


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
