"""A guard every test runs under: no SQL statement runs on the app's event loop.

A handler written `async def` that queries the database holds the loop for the query's time,
and every request meanwhile (even /healthz) waits: the "one request stalls the service" of
issue 17. Tests serve the app from a thread of its own (TestClient's portal, the live server),
so a statement run on a thread other than the main one, inside a running event loop, comes
from such a handler. The test's own `async def` body runs on the main thread and may query.

The worker's SQLite hot path (app/sends/store/hot.py) runs on the loop on purpose, on the raw
sqlite3 connection, where SQLAlchemy's events do not see it.
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


class LoopGuard:
    """Collects the statements that ran on a running event loop outside the main thread."""

    def __init__(self) -> None:
        self.hits: list[str] = []

    def install(self) -> None:
        """Listen on every engine (the app's, the worker's, the tests')."""
        event.listen(Engine, "before_cursor_execute", self._before_execute)

    def uninstall(self) -> None:
        """Stop listening."""
        event.remove(Engine, "before_cursor_execute", self._before_execute)

    def _before_execute(self, *args: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a worker thread (a sync handler, to_thread): the loop is free
        statement = str(args[2])
        where = [
            f"{f.filename}:{f.lineno} {f.name}"
            for f in traceback.extract_stack()
            if "/app/" in f.filename and "/site-packages/" not in f.filename
        ]
        self.hits.append(f"{statement[:100]!r}\n      " + "\n      ".join(where[-8:]))

    def take(self) -> list[str]:
        """Return the hits since the last take, and forget them."""
        hits, self.hits = self.hits, []
        return hits


def report(hits: list[str]) -> str:
    """Say which statements held the event loop, with the app frames that ran them."""
    return (
        f"{len(hits)} SQL statement(s) ran on the app's event loop (an async handler that "
        "queries holds every other request): make the handler a plain `def`, or move the "
        "database work to a thread.\n  " + "\n  ".join(hits[:5])
    )
