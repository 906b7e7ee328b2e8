"""The loop guard every test runs under (tests/loop_guard.py) catches an async handler's SQL.

Without it, a handler that queries inside `async def` passes every functional test while it
holds the event loop, and only a load test would notice.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.loop_guard import LoopGuard


def _app(db: Path) -> FastAPI:
    engine = create_engine(f"sqlite:///{db}")
    app = FastAPI()

    @app.get("/async")
    async def on_the_loop() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT 41 + 1")).scalar_one())

    @app.get("/sync")
    def on_a_thread() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT 41 + 1")).scalar_one())

    return app


def test_sql_in_an_async_handler_is_caught_and_a_sync_handler_passes(
    _no_sql_on_the_event_loop: LoopGuard, tmp_path: Path
) -> None:
    guard = _no_sql_on_the_event_loop
    with TestClient(_app(tmp_path / "guard.db")) as client:
        assert client.get("/sync").json() == 42
        assert guard.take() == []
        assert client.get("/async").json() == 42
        hits = guard.take()  # taken here, so this test itself does not fail on them
    assert len(hits) == 1, hits
    assert "SELECT 41 + 1" in hits[0]
