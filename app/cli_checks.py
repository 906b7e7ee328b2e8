"""Before a command other than serve, migrate or demo runs: is there a database and a key?

Such a command never creates either: from an empty folder it says in one line where it
looked and what to do, instead of leaving a fresh var/ behind and a traceback.
"""

from __future__ import annotations

from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.migrate import alembic_config

SET_UP = "run `morningpost migrate` (or `morningpost serve`) there first"


class NotSetUp(Exception):
    """The database or the signing key this command needs is not there; the message says why."""


def sqlite_path(url: str) -> Path | None:
    """Return the file of a SQLite URL, or None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database).resolve()


def head_revision() -> str | None:
    """Return the newest migration this version ships."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


def check_set_up(settings: Settings, *, may_upgrade: bool, connect: bool = True) -> None:
    """Raise NotSetUp unless the database exists (migrated) and a signing key is at hand.

    `connect=False` (the worker, which waits for a database that is down) skips the visit:
    only a missing SQLite file and a missing key are named.
    """
    url = settings.database_url
    shown = make_url(url).render_as_string(hide_password=True)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise NotSetUp(
            f"no database at {path} (MORNINGPOST_DATABASE_URL={shown}); {SET_UP}, "
            "or run this command in the folder that has var/, or set MORNINGPOST_DATABASE_URL"
        )
    if connect:
        _check_migrated(url, shown, may_upgrade=may_upgrade)
    key_file = (settings.var_dir / "secret_key").resolve()
    if not settings.secret_keys and not key_file.exists():
        raise NotSetUp(
            f"no signing key: MORNINGPOST_SECRET_KEYS is unset and {key_file} does not exist; "
            "set MORNINGPOST_SECRET_KEYS, or run `morningpost serve` once in this folder"
        )


def _check_migrated(url: str, shown: str, *, may_upgrade: bool) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc  # the driver's own words when there are any
        first = (str(cause).strip().splitlines() or [type(exc).__name__])[0]
        raise NotSetUp(f"cannot open the database {shown}: {first}") from None
    finally:
        engine.dispose()
    if current is None:
        raise NotSetUp(f"the database {shown} has no tables yet; {SET_UP}")
    if current != head_revision() and not may_upgrade:
        raise NotSetUp(f"the database {shown} is at an older migration; run `morningpost migrate`")
