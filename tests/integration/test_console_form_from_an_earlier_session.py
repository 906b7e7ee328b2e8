"""A form opened before the editor signed in again (in another tab) keeps its text.

Its CSRF token is the old session's, so nothing is saved from it; the editor gets the text back
in a form of the current session instead of a bare refusal. A post from another site still gets
nothing but the refusal.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import Issue
from tests.console_support import add_account, csrf_of, sign_in
from tests.helpers import new_issue

TEXT = """---
subject: Written in the first tab
---
## The lead {lead}
Every word of this survives <b>as typed</b>.
"""
OWN = {"Origin": "http://testserver"}


@pytest.fixture
def old_and_new(client: TestClient, ctx: Context) -> tuple[str, str]:
    """Sign in, sign out and in again (another tab); return the old and the new CSRF token."""
    add_account(ctx)
    old = sign_in(client)
    client.post("/editor/logout", data={"csrf_token": old})
    return old, sign_in(client)


def test_a_new_draft_from_an_earlier_session_comes_back_in_a_form_that_saves_it(
    client: TestClient, ctx: Context, old_and_new: tuple[str, str]
) -> None:
    old, new = old_and_new
    r = client.post("/editor/issues", data={"markdown": TEXT, "csrf_token": old}, headers=OWN)
    assert r.status_code == 403
    assert "Nothing was saved" in r.text
    # The text is back, escaped, in a form of the current session posting to the same place.
    assert "as typed" in r.text and "<b>as typed</b>" not in r.text
    assert 'action="/editor/issues"' in r.text and csrf_of(r.text) == new
    with session_scope(ctx.sessions) as session:
        assert session.scalars(select(Issue)).all() == []  # nothing saved from the stale form
    saved = client.post("/editor/issues", data={"markdown": TEXT, "csrf_token": csrf_of(r.text)})
    assert saved.status_code == 200 and "Written in the first tab" in saved.text


def test_an_edit_from_an_earlier_session_keeps_its_version(
    client: TestClient, ctx: Context, old_and_new: tuple[str, str], editor: dict[str, str]
) -> None:
    old, _ = old_and_new
    issue = new_issue(client, editor)
    r = client.post(
        f"/editor/issues/{issue['id']}/edit",
        data={"markdown": TEXT, "csrf_token": old, "version": "1"},
        headers=OWN,
    )
    assert r.status_code == 403 and "Every word of this survives" in r.text
    assert f'action="/editor/issues/{issue["id"]}/edit"' in r.text
    assert re.search(r'name="version" value="1"', r.text)


def test_autosave_from_an_earlier_session_answers_json(
    client: TestClient, old_and_new: tuple[str, str]
) -> None:
    old, _ = old_and_new
    r = client.post(
        "/editor/issues/autosave",
        data={"markdown": TEXT},
        headers={"X-CSRF-Token": old, "Accept": "application/json"},
    )
    assert r.status_code == 403
    assert r.json()["saved"] is False and r.json()["error"] == "stale_form"


def test_a_post_from_another_site_gets_no_form_back(
    client: TestClient, old_and_new: tuple[str, str]
) -> None:
    r = client.post(
        "/editor/issues",
        data={"markdown": TEXT, "csrf_token": "forged"},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403
    assert "Every word of this survives" not in r.text
    assert "stale or forged" in r.text


def test_a_block_form_from_an_earlier_session_comes_back_as_markdown(
    client: TestClient, old_and_new: tuple[str, str], editor: dict[str, str]
) -> None:
    old, new = old_and_new
    issue = new_issue(client, editor)
    form = {
        "csrf_token": old,
        "version": "1",
        "subject": "Typed block by block",
        "count": "1",
        "b0-type": "lead",
        "b0-title": "The lead",
        "b0-body": "Every block of this survives.",
    }
    r = client.post(f"/editor/issues/{issue['id']}/blocks", data=form, headers=OWN)
    assert r.status_code == 403 and "Every block of this survives." in r.text
    assert f'action="/editor/issues/{issue["id"]}/edit"' in r.text and csrf_of(r.text) == new
