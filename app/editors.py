"""Editor API tokens: create (shown once) and check against stored hashes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidInput, Unauthorized
from app.models import EditorToken, utcnow
from app.tokens import hash_secret, new_editor_token, same_digest


def create_editor_token(session: Session, name: str) -> str:
    """Store the hash of a new token for `name` and return the token itself."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("An editor token needs a name of 1 to 100 characters.")
    token = new_editor_token()
    session.add(EditorToken(name=name, token_hash=hash_secret(token)))
    session.flush()
    return token


def authenticate_editor(session: Session, token: str) -> EditorToken:
    """Return the editor owning `token` or raise Unauthorized."""
    digest = hash_secret(token)
    row = session.scalars(select(EditorToken).where(EditorToken.token_hash == digest)).first()
    # The lookup is by a SHA-256 of a 256-bit secret, so its timing leaks nothing useful;
    # the constant-time comparison guards against a collation or index surprise all the same.
    if row is None or not same_digest(row.token_hash, digest):
        raise Unauthorized("The editor token is not valid.")
    row.last_used_at = utcnow()
    return row
