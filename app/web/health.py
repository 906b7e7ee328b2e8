"""The health check: `SELECT 1` on a connection and a thread of its own, never in a queue.

`/healthz` must answer in under a second whatever the load (issue 17). The request pool and
the thread pool can both be full of queued work, and a SQLite transaction could wait for the
write lock, so the check owns one connection (a read: no lock), one thread, and a deadline;
concurrent checks share the one in flight instead of piling up.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from app.db import READ_ONLY, make_engine

# Answer within this even when the check is still under way.
DEADLINE_SECONDS = 0.5
# A check still under way then (queued behind load for the CPU) counts as healthy when the
# database last answered this recently; a database silent for longer is unavailable.
GRACE_SECONDS = 5.0


class HealthCheck:
    """Tell whether the database answers, within DEADLINE_SECONDS."""

    def __init__(self, url: str) -> None:
        self._engine: Engine = make_engine(
            url, pool_size=1, max_overflow=0, pool_timeout=DEADLINE_SECONDS
        ).execution_options(**{READ_ONLY: True})
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="healthz")
        self._pending: asyncio.Future[bool] | None = None
        self._answered = time.monotonic()  # as good as an answer until the first check

    def _select_one(self) -> bool:
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        self._answered = time.monotonic()
        return True

    async def ok(self) -> bool:
        """Return True when the database answers `SELECT 1`, or answered a moment ago."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().run_in_executor(
                self._thread, self._select_one
            )
        try:
            return await asyncio.wait_for(asyncio.shield(self._pending), DEADLINE_SECONDS)
        except TimeoutError:
            return time.monotonic() - self._answered < GRACE_SECONDS

    def close(self) -> None:
        """Release the connection and the thread."""
        self._thread.shutdown(wait=False)
        self._engine.dispose()
