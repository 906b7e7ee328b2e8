"""Reads never wait for the database's write lock, and slow work never runs while one is held.

Issue 17, item 5: on SQLite every transaction began with BEGIN IMMEDIATE, reads included, and
sign-in verified the password (argon2, a deliberate tenth of a second) inside that lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.console import accounts
from app.context import Context
from tests.console_support import EMAIL, add_account
from tests.helpers import new_issue

TIMEOUT = 15.0


@contextmanager
def write_lock_held(ctx: Context) -> Iterator[None]:
    """Hold an open write transaction (on SQLite: the database's one write lock) meanwhile."""
    with ctx.engine.connect() as conn:
        # A write transaction (SQLite: BEGIN IMMEDIATE, the lock) that locks no row anywhere.
        conn.execute(text("UPDATE issues SET subject = subject WHERE id < 0"))
        try:
            yield
        finally:
            conn.rollback()


def test_reads_answer_while_another_request_holds_the_write_lock(
    live: tuple[str, Context], editor: dict[str, str]
) -> None:
    url, ctx = live
    with httpx2.Client(base_url=url, timeout=TIMEOUT, headers=editor) as client:
        issue = new_issue(client, editor)
        client.get("/issues")  # "last used" written now, not during the lock
        with write_lock_held(ctx):
            answers = {
                path: client.get(path).status_code
                for path in (
                    "/healthz",
                    "/issues",
                    f"/issues/{issue['id']}",
                    f"/issues/{issue['id']}/stats",
                    "/subscribers",
                    "/metrics",
                    "/archive",
                )
            }
    assert answers == dict.fromkeys(answers, 200), answers


class _Watched:
    """The password hasher, noting how many pooled connections are out while it works."""

    def __init__(self, inner: Any, ctx: Context) -> None:
        self.inner, self.ctx = inner, ctx
        self.held: list[int] = []
        self.lock = threading.Lock()

    def _note(self) -> None:
        with self.lock:
            self.held.append(self.ctx.engine.pool.checkedout())  # type: ignore[attr-defined]

    def verify(self, *args: Any) -> Any:
        self._note()
        return self.inner.verify(*args)

    def verify_and_update(self, *args: Any) -> Any:
        self._note()
        return self.inner.verify_and_update(*args)

    def hash(self, *args: Any) -> Any:
        return self.inner.hash(*args)


def test_passwords_are_verified_outside_any_transaction(
    client: TestClient, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_account(ctx)
    watched = _Watched(accounts._hasher, ctx)
    monkeypatch.setattr(accounts, "_hasher", watched)
    for email, password in (
        ("nobody@example.org", "not the password at all"),
        (EMAIL, "wrong password, long enough"),
    ):
        page = client.post("/editor/login", data={"email": email, "password": password})
        assert page.status_code == 401, page.text
    assert watched.held == [0, 0]  # no connection out: no transaction, no lock, while hashing
