"""Editor accounts: add, list, remove, and check a password (flush only; the caller commits)."""

from __future__ import annotations

from datetime import datetime

from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.addresses import normalize_email
from app.db import session_scope
from app.errors import Conflict, InvalidInput, NotFound
from app.models import EditorAccount
from app.subscribers.service import clean_name

PASSWORD_MIN = 12
PASSWORD_MAX = 1024

_hasher = PasswordHash.recommended()  # argon2id with the library's current parameters
# Verified when the address is unknown, so a wrong address costs as long as a wrong password
# and the answer's timing does not tell which addresses have accounts.
_DUMMY_HASH = _hasher.hash("not-a-password-anyone-has")


def check_password_rules(password: str) -> None:
    """Raise InvalidInput unless the password is long enough (and not absurdly long)."""
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(f"A password needs at least {PASSWORD_MIN} characters.")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"A password can have at most {PASSWORD_MAX} characters.")


def find_editor(session: Session, email: str) -> EditorAccount | None:
    """Return the account with this address, or None."""
    address = normalize_email(email)
    return session.scalars(select(EditorAccount).where(EditorAccount.email == address)).first()


def add_editor(session: Session, email: str, name: str | None, password: str) -> EditorAccount:
    """Create an account; Conflict when the address already has one."""
    address = normalize_email(email)
    check_password_rules(password)
    if find_editor(session, address) is not None:
        raise Conflict(f"An editor with the address {address} exists already.")
    row = EditorAccount(email=address, name=clean_name(name), password_hash=_hasher.hash(password))
    session.add(row)
    session.flush()
    return row


def list_editors(session: Session) -> list[EditorAccount]:
    """Return every account in the order they were added."""
    return list(session.scalars(select(EditorAccount).order_by(EditorAccount.id)))


def remove_editor(session: Session, email: str) -> None:
    """Delete an account; its sessions go with it (ON DELETE CASCADE)."""
    row = find_editor(session, email)
    if row is None:
        raise NotFound(f"No editor with the address {normalize_email(email)}.")
    session.delete(row)
    session.flush()


def verify_login(
    session: Session,
    email: str,
    password: str,
    now: datetime,
    reads: sessionmaker[Session] | None = None,
) -> EditorAccount | None:
    """Return the account when the address and password match, else None (same cost both ways).

    With `reads`, the account is looked up in a read transaction of its own, so the password
    is verified (argon2, slow on purpose) while `session` holds no transaction and no lock;
    only a successful sign-in then writes, through `session`.
    """
    try:
        if reads is None:
            row = find_editor(session, email)
        else:
            with session_scope(reads) as lookup:
                row = find_editor(lookup, email)
    except InvalidInput:
        row = None
    if row is None or len(password) > PASSWORD_MAX:
        _hasher.verify(password[:PASSWORD_MAX], _DUMMY_HASH)
        return None
    ok, new_hash = _hasher.verify_and_update(password, row.password_hash)
    if not ok:
        return None
    if reads is not None:
        row = session.merge(row, load=False)  # into the session that writes
    if new_hash is not None:
        row.password_hash = new_hash  # parameters were raised since this hash was made
    row.last_login_at = now
    session.flush()
    return row
