"""Server-side console sessions: the cookie holds a random id, the table only its hash."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.models import EditorAccount, EditorSession
from app.tokens import hash_secret, same_digest

IDLE = timedelta(hours=12)
ABSOLUTE = timedelta(days=7)
# last_seen_at is written at most this often, so a page polling progress does not write a row
# every few seconds while the worker is busy writing results.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SignedIn:
    """The editor behind a request's cookie and the session's CSRF token."""

    editor_id: int
    email: str
    name: str
    session_id: int
    csrf_token: str

    def csrf_ok(self, given: str | None) -> bool:
        """Tell whether a submitted CSRF token is this session's (constant-time)."""
        return bool(given) and same_digest(self.csrf_token, given or "")


def start_session(session: Session, editor: EditorAccount, now: datetime) -> str:
    """Open a session for `editor` and return the cookie value (shown to the browser only)."""
    raw = secrets.token_urlsafe(32)
    session.add(
        EditorSession(
            editor_id=editor.id,
            session_hash=hash_secret(raw),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + ABSOLUTE,
        )
    )
    session.flush()
    return raw


def _find(session: Session, raw: str | None) -> tuple[EditorSession, EditorAccount] | None:
    if not raw or len(raw) > 100:
        return None
    found = session.execute(
        select(EditorSession, EditorAccount)
        .join(EditorAccount, EditorAccount.id == EditorSession.editor_id)
        .where(EditorSession.session_hash == hash_secret(raw))
    ).first()
    return None if found is None else (found[0], found[1])


def _ended(row: EditorSession, now: datetime) -> bool:
    return now >= row.expires_at or now - row.last_seen_at >= IDLE


def load_session(session: Session, raw: str | None, now: datetime) -> SignedIn | None:
    """Return who a cookie value signs in, or None when it is unknown, idle or expired."""
    found = _find(session, raw)
    if found is None:
        return None
    row, editor = found
    if _ended(row, now):
        session.delete(row)
        session.flush()
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        session.flush()
    return SignedIn(editor.id, editor.email, editor.name, row.id, row.csrf_token)


def load_session_apart(
    reads: sessionmaker[Session], writes: sessionmaker[Session], raw: str | None, now: datetime
) -> SignedIn | None:
    """`load_session` in a read transaction, writing (rarely) in a short one of its own.

    On SQLite a read never waits for the write lock, and a read that turned into a write
    could not wait for it either (the upgrade is refused at once under contention).
    """
    with session_scope(reads) as session:
        found = _find(session, raw)
    if found is None:
        return None
    row, editor = found
    if _ended(row, now):
        with session_scope(writes) as session:
            session.execute(delete(EditorSession).where(EditorSession.id == row.id))
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        with session_scope(writes) as session:
            session.execute(
                update(EditorSession)
                .where(EditorSession.id == row.id, EditorSession.last_seen_at < now)
                .values(last_seen_at=now)
            )
    return SignedIn(editor.id, editor.email, editor.name, row.id, row.csrf_token)


def end_session(session: Session, session_id: int) -> None:
    """Sign out: the row goes, so the cookie's value is worthless even if it was copied."""
    session.execute(delete(EditorSession).where(EditorSession.id == session_id))


def prune_sessions(session: Session, now: datetime) -> int:
    """Delete sessions that expired or went idle; return how many."""
    result = session.execute(
        delete(EditorSession).where(
            (EditorSession.expires_at <= now) | (EditorSession.last_seen_at <= now - IDLE)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
