"""Undo after a one-click link left the reader's last newsletter (and so the list): the undo
takes back exactly what that click changed, the newsletter and the list, and nothing else."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import Subscriber
from tests.helpers import new_issue


def _reader_taking(
    client: TestClient, editor: dict[str, str], ctx: Context, *slugs: str
) -> Subscriber:
    """Make these newsletters and a confirmed reader of them all; return the reader."""
    for slug in slugs:
        made = client.post(
            "/newsletters", json={"slug": slug, "name": slug.upper()}, headers=editor
        )
        assert made.status_code == 201, made.text
    client.post("/subscribe", json={"email": "ada@example.org", "newsletters": list(slugs)})
    with session_scope(ctx.sessions) as session:
        row = session.scalars(select(Subscriber).where(Subscriber.email == "ada@example.org")).one()
        session.expunge(row)
    assert client.post(f"/confirm/{ctx.tokens.confirm_token(row.id, row.email)}").status_code == 200
    return row


def _leave_then_undo(client: TestClient, ctx: Context, row: Subscriber, slug: str) -> str:
    """Leave one newsletter by its one-click link, press "Subscribe me again"; return the page."""
    token = ctx.tokens.unsubscribe_token(row.id, row.token_nonce)
    left = client.post(f"/unsubscribe/{token}?newsletter={slug}")
    assert left.status_code == 200, left.text
    undo = re.search(r'name="undo" value="([^"]+)"', left.text)
    assert undo is not None, "leaving the last newsletter offers an undo"
    back = client.post(f"/unsubscribe/{token}/undo", data={"undo": undo.group(1)})
    assert back.status_code == 200 and "Welcome back" in back.text
    return back.text


def _recipients(client: TestClient, editor: dict[str, str], slug: str) -> int:
    issue = new_issue(client, editor, slug=f"{slug}-issue", newsletter=slug)
    sent = client.post(f"/issues/{issue['id']}/send", headers=editor)
    assert sent.status_code == 202, sent.text
    count: int = sent.json()["recipients"]
    return count


def test_undo_after_leaving_ones_only_newsletter_takes_it_back(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    row = _reader_taking(client, editor, ctx, "alpha")
    _leave_then_undo(client, ctx, row, "alpha")
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["status"] == "active" and shown["newsletters"] == {"alpha": "active"}
    assert _recipients(client, editor, "alpha") == 1


def test_undo_takes_back_only_what_that_click_left(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    row = _reader_taking(client, editor, ctx, "alpha", "beta")
    prefs = ctx.tokens.preferences_token(row.id, row.token_nonce)
    unticked = client.post(
        f"/preferences/{prefs}",
        data={
            "action": "save",
            "pause_weeks": "0",
            "timezone": "UTC",
            "newsletters_shown": "1",
            "newsletters": ["alpha"],
        },
    )
    assert unticked.status_code == 200, unticked.text
    _leave_then_undo(client, ctx, row, "alpha")
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    # Beta was left by an earlier, separate choice: the undo does not take that back.
    assert shown["status"] == "active"
    assert shown["newsletters"] == {"alpha": "active", "beta": "unsubscribed"}
    assert _recipients(client, editor, "beta") == 0


def test_the_undo_page_names_the_newsletter_the_reader_is_back_on(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    row = _reader_taking(client, editor, ctx, "alpha")
    page = _leave_then_undo(client, ctx, row, "alpha")
    assert "You're subscribed to ALPHA again" in page
