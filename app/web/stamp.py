"""The public pages' stamp in the database: read it, claim it for this site, ping the database.

Reads go through a bare DBAPI connection in its driver's autocommit state: on SQLite every
SQLAlchemy transaction starts with BEGIN IMMEDIATE (app.db), which takes the write lock, and a
read once a second (or a health probe) must not queue behind the worker's commits for it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.models.page_stamp import STAMP_ID

_APP = Path(__file__).resolve().parents[1]
# What a page is made from besides the database: our code and both template trees.
_SOURCES = (_APP, _APP.parent / "email_templates")
_SUFFIXES = (".py", ".html", ".mjml", ".txt", ".xml", ".css", ".js")
# The settings that appear on a page or in an issue's web version.
_SITE_SETTINGS = (
    "newsletter_name",
    "newsletter_tagline",
    "base_url",
    "postal_address",
    "welcome_email",
    "list_id",
    "from_address",
    "click_counts",
    "track_readers",
)


@dataclass(frozen=True)
class Stamp:
    """What the database says about the pages: a counter that moves, and when it last did."""

    counter: int
    changed_at: datetime


def site_fingerprint(settings: Settings) -> str:
    """Return a hash of everything besides the database a page is made from."""
    digest = hashlib.blake2b(_sources_digest(), digest_size=16)
    for name in _SITE_SETTINGS:
        digest.update(f"{name}={getattr(settings, name)!r}\n".encode())
    return digest.hexdigest()


@cache
def _sources_digest() -> bytes:
    # Once per process: the code and templates a process runs do not change under it.
    digest = hashlib.blake2b(digest_size=16)
    for root in _SOURCES:
        for path in sorted(root.rglob("*")):
            if path.suffix in _SUFFIXES and path.is_file():
                digest.update(str(path.relative_to(root)).encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.digest()


def read_stamp(engine: Engine) -> Stamp | None:
    """Return the stamp (one primary-key read), or None when its row is missing."""
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        cursor.execute(f"SELECT counter, changed_at FROM page_stamps WHERE id = {STAMP_ID}")
        row = cursor.fetchone()
        cursor.close()
    finally:
        conn.close()  # back to the pool, which rolls back PostgreSQL's implicit transaction
    if row is None:
        return None
    return Stamp(int(row[0]), _utc(row[1]))


def claim_site(engine: Engine, site: str, now: datetime) -> None:
    """Move the stamp on when the stored site fingerprint is not ours (a deploy, a new name).

    Also creates the row when it is missing (a truncated table in tests, a hand-made database).
    On SQLite it waits at most a moment for the write lock and raises StampBusy otherwise: a
    page read must never queue behind another writer (issue 17); the next check claims again.
    """
    params = {"id": STAMP_ID, "now": _db_time(engine, now), "site": site}
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            conn.execute(text(_CLAIM), params)
        return
    raw = engine.raw_connection()
    driver: Any = raw.driver_connection
    try:
        driver.execute(f"PRAGMA busy_timeout = {CLAIM_WAIT_MS}")
        try:
            cursor = raw.cursor()
            cursor.execute(_CLAIM, params)
            raw.commit()
        except Exception as exc:
            raw.rollback()
            raise StampBusy(str(exc)) from None
        finally:
            driver.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
    finally:
        raw.close()


_CLAIM = (
    "INSERT INTO page_stamps (id, counter, changed_at, site)"
    " VALUES (:id, 1, :now, :site)"
    " ON CONFLICT (id) DO UPDATE SET counter = page_stamps.counter + 1,"
    " changed_at = excluded.changed_at, site = excluded.site"
    " WHERE page_stamps.site <> excluded.site"
)
CLAIM_WAIT_MS = 100
SQLITE_BUSY_MS = 30_000  # app.db's connect timeout, restored before the pool reuses it


class StampBusy(Exception):
    """Another writer holds SQLite's lock: the site is claimed at a later check."""


class DatabaseDown(Exception):
    """The database did not answer."""


def ping(engine: Engine) -> None:
    """Run SELECT 1 on a pooled connection; raise DatabaseDown when the database does not answer."""
    dbapi = engine.dialect.dbapi
    errors = (SQLAlchemyError, dbapi.Error) if dbapi is not None else (SQLAlchemyError,)
    try:
        conn = engine.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            cursor.close()
        finally:
            conn.close()
    except errors as exc:
        raise DatabaseDown(str(exc)) from exc


def _db_time(engine: Engine, now: datetime) -> datetime | str:
    # The triggers write SQLite's text form (see migration 0017); a bare bind would too, but
    # with a "+00:00" suffix on some drivers, so write the same text here.
    if engine.dialect.name == "sqlite":
        return now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return now


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite keeps timestamps as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
