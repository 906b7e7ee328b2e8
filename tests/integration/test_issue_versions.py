"""Two editors never silently overwrite each other (issue 17, item 9).

An issue carries a version: `GET /issues/{id}` sends it as the ETag, `PATCH` honours If-Match
(412 on a stale one), and the console's forms carry it; a stale console save shows both texts
and loses neither.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from app.context import Context
from app.db import session_scope
from app.models import Issue
from tests.console_support import add_account, sign_in
from tests.helpers import new_issue

A_TEXT = "A's correction"
B_TEXT = "B's stale rewrite"


def _subject(ctx: Context, issue_id: int) -> str:
    with session_scope(ctx.sessions) as session:
        return session.get_one(Issue, issue_id).subject


def test_a_stale_if_match_is_412_and_changes_nothing(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    issue = new_issue(client, editor, subject="Base")
    url = f"/issues/{issue['id']}"
    etag = client.get(url, headers=editor).headers["ETag"]
    # Editor A saves with the ETag they read: accepted, and the ETag moves on.
    a = client.patch(url, json={"subject": A_TEXT}, headers={**editor, "If-Match": etag})
    assert a.status_code == 200, a.text
    assert a.headers["ETag"] != etag
    assert client.get(url, headers=editor).headers["ETag"] == a.headers["ETag"]
    # Editor B saves from the same, now stale, read: refused, A's text stays.
    b = client.patch(url, json={"subject": B_TEXT}, headers={**editor, "If-Match": etag})
    assert b.status_code == 412, b.text
    assert b.json()["code"] == "precondition_failed"
    assert b.headers["ETag"] == a.headers["ETag"]  # what to fetch before merging
    assert _subject(ctx, issue["id"]) == A_TEXT
    # A tag of another issue, or no tag at all, is never taken for the current one.
    for stale in ('"999-2"', "not-an-etag", 'W/"1-1"'):
        r = client.patch(url, json={"subject": B_TEXT}, headers={**editor, "If-Match": stale})
        assert r.status_code == 412
    assert _subject(ctx, issue["id"]) == A_TEXT
    # The current tag (weak or strong, in a list) and `*` save; no If-Match saves (old scripts).
    current = a.headers["ETag"]
    r = client.patch(
        url, json={"preheader": "p1"}, headers={**editor, "If-Match": f'"x", W/{current}'}
    )
    assert r.status_code == 200
    r = client.patch(url, json={"preheader": "p2"}, headers={**editor, "If-Match": "*"})
    assert r.status_code == 200
    r = client.patch(url, json={"preheader": "p3"}, headers=editor)
    assert r.status_code == 200 and r.json()["version"] == 5
    assert r.json()["subject"] == A_TEXT


def test_a_patch_of_a_started_send_is_409_even_with_the_right_etag(
    client: TestClient, editor: dict[str, str]
) -> None:
    issue = new_issue(client, editor)
    url = f"/issues/{issue['id']}"
    etag = client.get(url, headers=editor).headers["ETag"]
    assert client.post(f"{url}/send", headers=editor).status_code == 202
    r = client.patch(url, json={"subject": B_TEXT}, headers={**editor, "If-Match": etag})
    assert r.status_code == 409


@pytest.fixture
def csrf(client: TestClient, ctx: Context) -> str:
    """Sign the client in as an editor and return the session's CSRF token."""
    add_account(ctx)
    return sign_in(client)


def _version_field(html: str) -> str:
    found = re.search(r'name="version" value="(\d+)"', html)
    assert found, "the form carries no version"
    return found.group(1)


def _markdown(subject: str) -> str:
    return (
        f"---\nsubject: {subject}\npreheader: Today\n---\n"
        "## Hello readers {lead}\nFirst **issue**.\n"
    )


def _save(client: TestClient, url: str, subject: str, version: str, csrf: str) -> Any:
    return client.post(
        url, data={"markdown": _markdown(subject), "version": version, "csrf_token": csrf}
    )


def test_console_stale_save_shows_both_texts_and_loses_neither(
    client: TestClient, editor: dict[str, str], csrf: str, ctx: Context
) -> None:
    issue = new_issue(client, editor, subject="Base")
    edit = f"/editor/issues/{issue['id']}/edit"
    # Two editors open the form at the same version.
    version = _version_field(client.get(edit).text)
    a = client.post(
        edit, data={"markdown": _markdown(A_TEXT), "version": version, "csrf_token": csrf}
    )
    assert a.status_code == 200 and a.url.path == f"/editor/issues/{issue['id']}"
    b = client.post(
        edit, data={"markdown": _markdown(B_TEXT), "version": version, "csrf_token": csrf}
    )
    assert b.status_code == 409
    assert _subject(ctx, issue["id"]) == A_TEXT  # A's save stands
    # Both texts are on the page: B's still in the form, A's shown beside it.
    textarea = re.search(r'<textarea id="markdown"[^>]*>(.*?)</textarea>', b.text, re.S)
    assert textarea and str(escape(B_TEXT)) in textarea.group(1)
    theirs = re.search(r'<pre[^>]*id="theirs"[^>]*>(.*?)</pre>', b.text, re.S)
    assert theirs and str(escape(A_TEXT)) in theirs.group(1)
    # The form now carries the saved version: saving again is B's deliberate choice.
    again = _version_field(b.text)
    assert again != version
    c = client.post(
        edit, data={"markdown": _markdown(B_TEXT), "version": again, "csrf_token": csrf}
    )
    assert c.status_code == 200 and _subject(ctx, issue["id"]) == B_TEXT


def test_block_editor_stale_save_keeps_the_form_and_the_saved_text(
    client: TestClient, editor: dict[str, str], csrf: str, ctx: Context
) -> None:
    issue = new_issue(client, editor, subject="Base")
    blocks = f"/editor/issues/{issue['id']}/blocks"
    version = _version_field(client.get(blocks).text)
    client.patch(f"/issues/{issue['id']}", json={"subject": A_TEXT}, headers=editor)
    form = {
        "csrf_token": csrf,
        "version": version,
        "count": "1",
        "subject": B_TEXT,
        "preheader": "",
        "b0-type": "lead",
        "b0-pos": "1",
        "b0-title": "Hello readers",
        "b0-body": "B's body",
        "action": "save",
    }
    b = client.post(blocks, data=form)
    assert b.status_code == 409
    assert _subject(ctx, issue["id"]) == A_TEXT
    assert f'value="{escape(B_TEXT)}"' in b.text and "B&#39;s body" in b.text
    theirs = re.search(r'<pre[^>]*id="theirs"[^>]*>(.*?)</pre>', b.text, re.S)
    assert theirs and str(escape(A_TEXT)) in theirs.group(1)
    assert _version_field(b.text) != version


def _version(ctx: Context, issue_id: int) -> int:
    with session_scope(ctx.sessions) as session:
        return session.get_one(Issue, issue_id).version


def test_a_console_save_that_arrives_twice_is_saved_once_not_a_conflict(
    client: TestClient, editor: dict[str, str], csrf: str, ctx: Context
) -> None:
    """A browser may re-send a form POST (a retried connection, a double click).

    The second copy still names the version the form was opened at; it must read as saved,
    not as a conflict with the editor's own words, and must not bump the version again.
    """
    issue = new_issue(client, editor, subject="Base")
    edit = f"/editor/issues/{issue['id']}/edit"
    version = _version_field(client.get(edit).text)
    first = _save(client, edit, A_TEXT, version, csrf)
    assert first.status_code == 200 and first.url.path == f"/editor/issues/{issue['id']}"
    saved_at = _version(ctx, issue["id"])
    assert saved_at == int(version) + 1
    again = _save(client, edit, A_TEXT, version, csrf)
    assert again.status_code == 200 and again.url.path == f"/editor/issues/{issue['id']}"
    assert _version(ctx, issue["id"]) == saved_at  # nothing written the second time
    assert _subject(ctx, issue["id"]) == A_TEXT
    # The same repeat, once someone else has saved over it, is stale: theirs stands.
    client.patch(f"/issues/{issue['id']}", json={"subject": "C's edit"}, headers=editor)
    late = _save(client, edit, A_TEXT, version, csrf)
    assert late.status_code == 409
    assert _subject(ctx, issue["id"]) == "C's edit"
    # The API keeps If-Match strict: a stale tag is 412 even for text that already holds.
    url = f"/issues/{issue['id']}"
    r = client.patch(
        url, json={"subject": "C's edit"}, headers={**editor, "If-Match": f'"{issue["id"]}-1"'}
    )
    assert r.status_code == 412


def test_a_block_editor_save_that_arrives_twice_is_saved_once(
    client: TestClient, editor: dict[str, str], csrf: str, ctx: Context
) -> None:
    issue = new_issue(client, editor, subject="Base")
    blocks = f"/editor/issues/{issue['id']}/blocks"
    version = _version_field(client.get(blocks).text)
    form = {
        "csrf_token": csrf,
        "version": version,
        "count": "1",
        "subject": A_TEXT,
        "preheader": "",
        "b0-type": "lead",
        "b0-pos": "1",
        "b0-title": "Hello readers",
        "b0-body": "A's body",
        "action": "save",
    }
    first = client.post(blocks, data=form)
    assert first.status_code == 200, first.text
    saved_at = _version(ctx, issue["id"])
    again = client.post(blocks, data=form)
    assert again.status_code == 200, again.text
    assert _version(ctx, issue["id"]) == saved_at == int(version) + 1
    # A different body from the same stale form is a conflict, as before.
    changed = client.post(blocks, data={**form, "b0-body": "Another body"})
    assert changed.status_code == 409
