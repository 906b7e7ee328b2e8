"""Helpers the console tests share: an editor account and a signed-in test client."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.console.accounts import add_editor
from app.context import Context
from app.db import session_scope

EMAIL = "ed@example.org"
PASSWORD = "correct horse battery staple"


def add_account(ctx: Context, email: str = EMAIL, password: str = PASSWORD) -> None:
    """Create an editor account."""
    with session_scope(ctx.sessions) as session:
        add_editor(session, email, "Ed Itor", password)


def csrf_of(html: str) -> str:
    """Return the CSRF token in a console page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(client: TestClient, email: str = EMAIL, password: str = PASSWORD) -> str:
    """Sign in through the form and return the session's CSRF token."""
    resp = client.post("/editor/login", data={"email": email, "password": password})
    assert resp.status_code == 200, resp.text
    assert resp.url.path == "/editor/"
    return csrf_of(resp.text)
