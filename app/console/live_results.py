"""One consistent reading of an issue's results: counts, progress and a page of recipients.

The tiles, the bar and the table are filled from the same transaction, so they never
disagree (on PostgreSQL under REPEATABLE READ: one snapshot for every statement; SQLite's
transactions see one snapshot already).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.console.queries import RecipientRow, issue_recipients
from app.issues import service
from app.issues.schemas import SendStats

PER_PAGE = 50
PER_PAGE_MAX = 200


@dataclass(frozen=True)
class ResultsView:
    """What the results page shows, read at one moment."""

    stats: SendStats
    rows: list[RecipientRow]
    next_cursor: str | None

    @property
    def done(self) -> int:
        """Return how many deliveries have an outcome (the bar's value)."""
        return self.stats.done

    @property
    def waiting(self) -> int:
        """Return how many deliveries still wait (the tile's value)."""
        return self.stats.waiting


def progress_json(st: SendStats) -> dict[str, Any]:
    """Return the fields the console's live progress bars poll for (progress.js, live.js)."""
    return {
        "status": st.status,
        "recipients": st.recipients,
        "done": st.done,
        "sent": st.sent,
        "failed": st.failed,
        "retry": st.retry,
        "rate_per_second": st.rate_per_second,
        "eta_seconds": st.eta_seconds,
        "pause_reason": st.pause_reason,
    }


@contextmanager
def snapshot(sessions: sessionmaker[Session], current: Session) -> Iterator[Session]:
    """Yield a session whose statements all see the same moment (read-only).

    SQLite: the request's own session (its transaction is one snapshot already, and a second
    one would wait for the write lock the first holds). PostgreSQL: a REPEATABLE READ one.
    """
    if current.get_bind().dialect.name != "postgresql":
        yield current
        return
    session = sessions()
    try:
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield session
        # Read only: ending it with a commit keeps what was read (no expiry on commit), so
        # the page can still be drawn from those rows once the connection is back in the pool.
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def read_results(
    session: Session, issue_id: int, *, status: str, q: str, after: str, per: int
) -> ResultsView:
    """Read counts and one page of recipients in the caller's transaction."""
    stats = service.stats(session, issue_id)
    rows, next_cursor = issue_recipients(
        session,
        issue_id,
        status=status or None,
        q=q,
        after=after,
        limit=max(1, min(per, PER_PAGE_MAX)),
    )
    return ResultsView(stats, rows, next_cursor)
