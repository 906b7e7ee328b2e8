"""Editor API tokens: create (shown once), check against stored hashes, list, revoke, expire."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound, Unauthorized
from app.models import EditorToken, utcnow
from app.tokens import hash_secret, new_editor_token, same_digest

MAX_EXPIRY_DAYS = 3650
# "Last used" is for people (`editor-token list`): a minute's precision is plenty, and a read
# request then writes nothing.
TOUCH_EVERY = timedelta(minutes=1)


def create_editor_token(session: Session, name: str, expires_days: int | None = None) -> str:
    """Store the hash of a new token for `name` and return the token itself."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("An editor token needs a name of 1 to 100 characters.")
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise InvalidInput(f"A token can expire after 1 to {MAX_EXPIRY_DAYS} days.")
    token = new_editor_token()
    now = utcnow()
    expires_at = now + timedelta(days=expires_days) if expires_days is not None else None
    session.add(
        EditorToken(name=name, token_hash=hash_secret(token), created_at=now, expires_at=expires_at)
    )
    session.flush()
    return token


def authenticate_editor(session: Session, token: str) -> EditorToken:
    """Return the editor owning `token` or raise Unauthorized (also when revoked or expired)."""
    digest = hash_secret(token)
    row = session.scalars(select(EditorToken).where(EditorToken.token_hash == digest)).first()
    # The lookup is by a SHA-256 of a 256-bit secret, so its timing leaks nothing useful;
    # the constant-time comparison guards against a collation or index surprise all the same.
    if row is None or not same_digest(row.token_hash, digest):
        raise Unauthorized("The editor token is not valid.")
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthorized("This editor token has been revoked.")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("This editor token has expired; create a new one.")
    return row


def touch_editor_token(session: Session, row: EditorToken, now: datetime) -> None:
    """Record that `row` was used, at most once a minute (a read request then writes nothing)."""
    if row.last_used_at is not None and now - row.last_used_at < TOUCH_EVERY:
        return
    # Compare-and-set in one statement: concurrent requests write it once, and the caller can
    # run it in a short write transaction of its own, apart from the request's reads.
    session.execute(
        update(EditorToken)
        .where(
            EditorToken.id == row.id,
            EditorToken.last_used_at.is_not_distinct_from(row.last_used_at),
        )
        .values(last_used_at=now)
    )


def list_editor_tokens(session: Session) -> list[EditorToken]:
    """Return every editor token (hashes only), oldest first."""
    return list(session.scalars(select(EditorToken).order_by(EditorToken.id)))


def token_state(row: EditorToken, now: datetime) -> str:
    """Return "active", "revoked" or "expired" for a token row."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def revoke_editor_token(session: Session, name_or_id: str) -> int:
    """Revoke the live tokens with this name (or this id); return how many; NotFound if none."""
    key = name_or_id.strip()
    stmt = select(EditorToken).where(EditorToken.revoked_at.is_(None))
    if key.isascii() and key.isdigit():
        stmt = stmt.where(EditorToken.id == int(key))
    else:
        stmt = stmt.where(EditorToken.name == key)
    rows = list(session.scalars(stmt))
    if not rows:
        raise NotFound(f"No live editor token named {key!r}.")
    now = utcnow()
    for row in rows:
        row.revoked_at = now
    session.flush()
    return len(rows)
