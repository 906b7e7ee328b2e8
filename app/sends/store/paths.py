"""Pick the worker's commit path by database (see store/commit.py)."""

from __future__ import annotations

from sqlalchemy import Engine

from app.sends.policy import RetryPolicy
from app.sends.store.commit import CommitPath, FirstOf, PooledPath
from app.sends.store.hot import SQLiteHotPath
from app.sends.store.pg import PostgresPath


def commit_path(engine: Engine, owner: str, policy: RetryPolicy) -> CommitPath:
    """Return the fastest commit path this engine allows, with the pooled one behind it.

    SQLite: the driver on the event loop, stepping aside to the pooled path while another
    process holds the write lock. PostgreSQL with psycopg: one statement a commit, one round
    trip. Anything else: SQLAlchemy on a thread.
    """
    dialect = engine.dialect
    if dialect.name == "sqlite":
        return FirstOf(SQLiteHotPath(engine, owner, policy), PooledPath(engine, owner, policy))
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return PostgresPath(engine, owner, policy)
    return PooledPath(engine, owner, policy)
