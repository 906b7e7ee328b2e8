"""The editor's copies and kept text land where the editor was working (issue 22, review)."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import Issue, IssueRevision
from tests.console_support import EMAIL, PASSWORD, add_account, csrf_of, sign_in
from tests.helpers import new_issue

TEXT = """---
subject: Written while the draft was deleted
---
## The lead {lead}
Every word of this survives.
"""


@pytest.fixture
def csrf(client: TestClient, ctx: Context) -> str:
    """Sign the client in as an editor and return the session's CSRF token."""
    add_account(ctx)
    return sign_in(client)


def test_duplicate_keeps_the_copy_in_the_same_newsletter(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    made = client.post("/newsletters", json={"slug": "robots", "name": "Robots"}, headers=editor)
    assert made.status_code == 201, made.text
    robots_id = made.json()["id"]
    issue = new_issue(client, editor, newsletter="robots")
    r = client.post(
        f"/editor/issues/{issue['id']}/duplicate",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    copy_id = int(r.headers["location"].split("/")[3])
    with session_scope(ctx.sessions) as session:
        copy = session.get_one(Issue, copy_id)
        assert copy.subject.endswith("(copy)")
        assert copy.newsletter_id == robots_id


def test_text_kept_for_a_draft_deleted_meanwhile_signs_in_and_comes_back(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    issue = new_issue(client, editor)
    # Another editor deletes the draft while this one's session ends with unsaved text.
    assert client.delete(f"/issues/{issue['id']}", headers=editor).status_code == 204
    client.post("/editor/logout", data={"csrf_token": csrf})
    refused = client.post(
        f"/editor/issues/{issue['id']}/edit", data={"markdown": TEXT, "csrf_token": csrf}
    )
    assert refused.status_code == 403 and "Every word of this survives." in refused.text
    back = client.post(
        "/editor/login",
        data={
            "email": EMAIL,
            "password": PASSWORD,
            "next": f"/editor/issues/{issue['id']}/edit",
            "markdown": TEXT,
        },
    )
    # Signed in, and the text is back in a form that can save it (a new draft).
    assert back.status_code == 200, back.text
    assert back.url.path == "/editor/issues/new" and "revision=" in str(back.url)
    assert "Every word of this survives." in back.text
    with session_scope(ctx.sessions) as session:
        kept = session.scalars(select(IssueRevision)).all()
        assert [(r.issue_id, r.source) for r in kept] == [(None, "stash")]


def test_text_kept_at_sign_in_does_not_overwrite_a_save_made_meanwhile(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    issue = new_issue(client, editor)
    iid = issue["id"]
    # Opened at version 1; a colleague saves while this editor's session ends.
    theirs = client.patch(f"/issues/{iid}", json={"subject": "Their subject"}, headers=editor)
    assert theirs.status_code == 200, theirs.text
    client.post("/editor/logout", data={"csrf_token": csrf})
    refused = client.post(
        f"/editor/issues/{iid}/edit", data={"markdown": TEXT, "csrf_token": csrf, "version": "1"}
    )
    assert refused.status_code == 403
    assert 'name="version" value="1"' in refused.text  # the version goes along with the text
    back = client.post(
        "/editor/login",
        data={
            "email": EMAIL,
            "password": PASSWORD,
            "next": f"/editor/issues/{iid}/edit",
            "markdown": TEXT,
            "version": "1",
        },
    )
    assert back.status_code == 200 and back.url.path == f"/editor/issues/{iid}/edit"
    assert "Every word of this survives." in back.text
    assert "Their saved version" in back.text  # both texts shown at once
    new_csrf = csrf_of(back.text)
    version = re.search(r'name="version" value="(\d*)"', back.text)
    assert version is not None and version.group(1) == "1"
    # Saving that form does not silently replace the colleague's save.
    save = client.post(
        f"/editor/issues/{iid}/edit",
        data={"markdown": TEXT, "csrf_token": new_csrf, "version": version.group(1)},
    )
    assert save.status_code == 409
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Issue, iid).subject == "Their subject"


def test_block_editor_text_kept_when_the_session_ended_comes_back_in_the_editor(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    issue = new_issue(client, editor)
    iid = issue["id"]
    form = {
        "csrf_token": csrf,
        "version": "1",
        "subject": "Blocks typed before the session ended",
        "preheader": "",
        "count": "1",
        "b0-type": "lead",
        "b0-pos": "1",
        "b0-title": "A lead typed block by block",
        "b0-body": "Every word of this survives too.",
    }
    client.post("/editor/logout", data={"csrf_token": csrf})
    refused = client.post(f"/editor/issues/{iid}/blocks", data=form)
    assert refused.status_code == 403
    assert "Every word of this survives too." in refused.text  # on the page, not only in memory
    assert f'name="next" value="/editor/issues/{iid}/edit"' in refused.text
    kept = re.search(r'name="markdown"[^>]*>([^<]*)</textarea>', refused.text)
    assert kept is not None
    back = client.post(
        "/editor/login",
        data={
            "email": EMAIL,
            "password": PASSWORD,
            "next": f"/editor/issues/{iid}/edit",
            "markdown": html.unescape(kept.group(1)),
            "version": "1",
        },
    )
    assert back.status_code == 200 and back.url.path == f"/editor/issues/{iid}/edit"
    assert "Blocks typed before the session ended" in back.text
    assert "Every word of this survives too." in back.text


def test_another_sites_post_to_an_ended_session_keeps_none_of_its_text(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    issue = new_issue(client, editor)
    client.post("/editor/logout", data={"csrf_token": csrf})
    planted = "Planted by another site: wire the money to this account."
    refused = client.post(
        f"/editor/issues/{issue['id']}/edit",
        data={"markdown": TEXT.replace("Every word of this survives.", planted)},
        headers={"origin": "https://evil.example"},
    )
    # The sign-in page is offered, but the text is not carried into it.
    assert refused.status_code == 403
    assert "Planted by another site" not in html.unescape(refused.text)
    assert 'name="markdown"' not in refused.text
