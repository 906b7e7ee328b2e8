"""Fixtures: a migrated database per test (SQLite, or PostgreSQL when
MORNINGPOST_TEST_DATABASE_URL is set), a real SMTP server, the app and an editor token."""

from __future__ import annotations

import gc
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine

from app.config import Settings
from app.context import Context, build_context
from app.db import make_engine, session_scope
from app.editors import create_editor_token
from app.main import create_app
from app.migrate import upgrade_head
from app.models import Base
from tests.live_server import LiveServer
from tests.loop_guard import LoopGuard, report
from tests.smtp_server import SMTPTestServer, free_port

PG_URL = os.environ.get("MORNINGPOST_TEST_DATABASE_URL", "").strip()

# The files whose tests take a minute or more on a loaded 2-core machine (.ci/run's
# --durations). They are handed out first: a run's wall time is its slowest xdist worker's, and
# one of these started last would keep one worker busy while the other had nothing left.
LONG_FILES = frozenset(
    {
        "test_schemathesis.py",
        "test_hostile_bodies.py",
        "test_crash_window.py",
        "test_scale.py",
        "test_editor_journey_browser.py",
        "test_contrast.py",
    }
)


# Tests that time /healthz against a tight bound (1 s) while one request runs. Handed out last,
# not beside the long files, whose floods on the other workers take CPU from the live server.
# Two CI runs (12-07) and one on 12-08 saw 2.6-3.0 s stalls that were blamed on that; the cause
# was a full garbage collection in the test process, which hosts the live server: every app a
# test built stayed alive (tests/integration/test_a_dropped_app_is_freed.py), 7 million objects
# by the end, and one collection of them took 3 s on an idle machine. The bound is unchanged.
TIGHT_TIMING_FILES = frozenset({"test_event_loop_stays_free.py"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the long files' tests first and the tight-timing ones last; the rest keep their order."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return 0 if name in LONG_FILES else 2 if name in TIGHT_TIMING_FILES else 1

    items.sort(key=rank)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep what the imports built out of every later garbage collection, as `serve` does.

    The live server runs in the test process: a full collection of the whole heap holds its
    event loop. After collection the heap is modules, classes and test items that live until
    the end; freezing them leaves a collection only the objects the tests make.
    """
    gc.collect()
    gc.freeze()


def _psycopg(url: str) -> str:
    u = make_url(url)
    return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrate once per run: a SQLite file to copy, or a fresh PostgreSQL database to truncate."""
    if PG_URL:
        admin_url = _psycopg(PG_URL)
        name = f"mp_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        upgrade_head(engine)
        engine.dispose()
        yield url
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("db") / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade_head(engine)
        engine.dispose()  # closing the last connection checkpoints the WAL into the file
        yield str(path)


# The console's own password hasher and dummy hash, kept while the tests use quicker ones.
REAL_PASSWORD_HASHING: dict[str, Any] = {}


@pytest.fixture(scope="session")
def _loop_guard() -> Iterator[LoopGuard]:
    guard = LoopGuard()
    guard.install()
    yield guard
    guard.uninstall()


@pytest.fixture(autouse=True)
def _no_sql_on_the_event_loop(_loop_guard: LoopGuard) -> Iterator[LoopGuard]:
    """Fail a test during which the app ran SQL on its event loop (tests/loop_guard.py)."""
    _loop_guard.take()
    yield _loop_guard
    hits = _loop_guard.take()
    assert not hits, report(hits)


@pytest.fixture(autouse=True, scope="session")
def _quick_password_hashing() -> Iterator[None]:
    """Hash editor passwords with argon2id's cheapest parameters here, as Django's tests do.

    The recommended ones cost 0.2 s a hash and a check on a 2-core CI machine, on purpose, and
    the console's tests sign in hundreds of times. Same algorithm and code path; only the cost
    differs (test_console_auth checks the real hasher's parameters). A subprocess (a `serve`
    or a CLI command under test) keeps the real ones.
    """
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from app.console import accounts

    quick = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    REAL_PASSWORD_HASHING.update(hasher=accounts._hasher, dummy=accounts._DUMMY_HASH)
    patch = pytest.MonkeyPatch()
    patch.setattr(accounts, "_hasher", quick)
    patch.setattr(accounts, "_DUMMY_HASH", quick.hash("not-a-password-anyone-has"))
    yield
    patch.undo()


@pytest.fixture
def db_url(_database_template: str, tmp_path: Path) -> str:
    """Return the URL of an empty, migrated database for this test."""
    if PG_URL:
        engine = create_engine(_database_template)
        # DELETE, children first, and every sequence back to 1: as empty as TRUNCATE ...
        # RESTART IDENTITY leaves them, for 0.01-0.02 s a test instead of 0.26-0.37 (TRUNCATE
        # makes new files for all 30 tables; the tests leave a few rows in a few of them).
        children_first = reversed(Base.metadata.sorted_tables)
        deletes = "; ".join(f'DELETE FROM "{t.name}"' for t in children_first)
        with engine.begin() as conn:
            conn.execute(text(deletes))
            conn.execute(
                text(
                    "SELECT setval(c.oid::regclass, 1, false) FROM pg_class c "
                    "WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace"
                )
            )
            # The rows the migrations seed, as a fresh install has them (see 0022).
            conn.execute(
                text(
                    "INSERT INTO newsletters (id, slug, is_default, created_at, updated_at) "
                    "VALUES (1, 'default', true, now(), now())"
                )
            )
            conn.execute(text("SELECT setval('newsletters_id_seq', 1)"))
        engine.dispose()
        return _database_template
    path = tmp_path / "test.db"
    shutil.copyfile(_database_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def is_pg() -> bool:
    """Tell whether this run is on PostgreSQL."""
    return bool(PG_URL)


@pytest.fixture(scope="session")
def shared_smtp_server() -> Iterator[SMTPTestServer]:
    """Start one real, accepting SMTP server on a free loopback port for the whole run."""
    server = SMTPTestServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server(shared_smtp_server: SMTPTestServer) -> Iterator[SMTPTestServer]:
    """Return the shared SMTP server, emptied and back to accepting everything.

    Scripts, refusals, stalls and delays set by a test are undone by the reset before the next
    one; a message still in flight from an earlier test is dropped, not counted here.
    """
    shared_smtp_server.handler.reset()
    yield shared_smtp_server
    shared_smtp_server.handler.reset()


@pytest.fixture
def private_smtp_server() -> Iterator[SMTPTestServer]:
    """Start an SMTP server of this test's own (for a test that must not share connections)."""
    server = SMTPTestServer().start()
    yield server
    server.stop()


@pytest.fixture
def settings(db_url: str, smtp_server: SMTPTestServer, tmp_path: Path) -> Settings:
    """Return settings pointing at this test's database and SMTP server."""
    return Settings(
        database_url=db_url,
        smtp_url=smtp_server.url,
        base_url="http://testserver",
        secret_keys=["an-old-key", "the-current-key"],
        from_address="The AI Morning Post <news@morningpost.test>",
        var_dir=tmp_path / "var",
        retry_backoff_seconds=0,
        poll_interval_seconds=0.05,
        # The product's default. Five seconds was too tight for this in-process server: a
        # loaded CI machine that stalls the whole process for that long lets the client's
        # timer fire before the server thread answers, and the messages then in flight turn
        # `unknown` (correctly, and never resent), which two pause-and-resume tests then
        # reported as one or two readers missing. Tests of a silent relay set their own.
        smtp_timeout_seconds=30,
        smtp_connections=2,
        batch_size=50,
        run_worker=False,
        # Each page request asks the database whether an issue changed, so a test sees its own
        # writes at once; tests/integration/test_page_cache.py checks the cache with its real bound.
        page_cache_seconds=0,
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """Return an engine on this test's database."""
    eng = make_engine(settings.database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def ctx(settings: Settings, engine: Engine) -> Context:
    """Return the process context the app and the worker share."""
    return build_context(settings, engine=engine)


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    """Return a test client on the app (no worker inside; tests drive it explicitly)."""
    app = create_app(ctx.settings, context=ctx)
    # A real address as the peer (the default "testclient" is no IP and is stored as none).
    with TestClient(app, base_url="http://testserver", client=("127.0.0.1", 50000)) as c:
        yield c


@pytest.fixture
def editor_token(ctx: Context) -> str:
    """Create an editor token and return it."""
    with session_scope(ctx.sessions) as session:
        return create_editor_token(session, "tests")


@pytest.fixture
def editor(editor_token: str) -> dict[str, str]:
    """Return the Authorization header of an editor."""
    return {"Authorization": f"Bearer {editor_token}"}


@pytest.fixture
def live(settings: Settings, engine: Engine) -> Iterator[tuple[str, Context]]:
    """Serve the app over real HTTP on a free loopback port; links point at it (no worker)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    live_ctx = build_context(settings.model_copy(update={"base_url": url}), engine=engine)
    with LiveServer(live_ctx, port):
        yield url, live_ctx
