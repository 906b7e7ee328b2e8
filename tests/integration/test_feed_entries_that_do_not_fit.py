"""Feed entries an issue cannot hold as they are (a link too long, braces that read as a
merge tag, anything a block refuses): the entry is shown as it can be or left out, it is
still recorded as seen, the feed says so, and the next poll works."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.automations import feed_parse
from app.context import Context
from app.db import session_scope
from app.models import FeedItem, Issue
from tests.feed_support import FeedServer, entry

LONG_LINK = "https://wire.example/" + "a" * 1500


def poll(client: TestClient, editor: dict[str, str], feed_id: int) -> dict[str, Any]:
    """Poll a feed now through the API."""
    resp = client.post(f"/feeds/{feed_id}/poll", headers=editor)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def primed_feed(client: TestClient, editor: dict[str, str], server: FeedServer) -> int:
    """Register the test server's feed and take its first (recording-only) poll."""
    server.publish(entry(1))
    fid: int = client.post("/feeds", json={"url": server.url}, headers=editor).json()["id"]
    poll(client, editor, fid)
    return fid


def test_a_link_too_long_for_an_issue_is_left_out_and_the_feed_goes_on(
    fclient: TestClient, fctx: Context, editor: dict[str, str], feed_server: FeedServer
) -> None:
    fid = primed_feed(fclient, editor, feed_server)
    feed_server.publish(entry(2), entry(3, link=LONG_LINK))
    made = poll(fclient, editor, fid)
    assert made["issue_id"] is not None and made["feed"]["items_seen"] == 3
    # Visible: the feed's alert names the entry that lost its link, and the limit.
    assert "Story 3" in made["feed"]["last_error"] and "900" in made["feed"]["last_error"]
    assert made["feed"]["failures"] == 0
    with session_scope(fctx.sessions) as session:
        lead, links = session.get_one(Issue, made["issue_id"]).blocks
        assert "https://wire.example/2" in lead["body"]
        assert links["items"][0]["title"] == "Story 3" and links["items"][0]["url"] is None
        # The record keeps the link the issue could not show.
        stored = session.scalars(select(FeedItem.link).where(FeedItem.title == "Story 3"))
        assert stored.one() == LONG_LINK
    feed_server.publish(entry(4))
    later = poll(fclient, editor, fid)
    assert later["issue_id"] not in (None, made["issue_id"])
    assert later["feed"]["items_seen"] == 4 and later["feed"]["last_error"] is None


def test_braces_in_a_feed_are_text_never_a_merge_tag(
    fclient: TestClient, fctx: Context, editor: dict[str, str], feed_server: FeedServer
) -> None:
    fid = primed_feed(fclient, editor, feed_server)
    feed_server.publish(
        entry(2, title="Using {{ name }} templates"),
        entry(3, title="{{ nonsense }}", summary="Write {{ attr.x }} or {{"),
    )
    made = poll(fclient, editor, fid)
    assert made["issue_id"] is not None and made["feed"]["last_error"] is None
    with session_scope(fctx.sessions) as session:
        issue = session.get_one(Issue, made["issue_id"])
        assert issue.subject == "Using { { name } } templates"
        assert "{{" not in f"{issue.subject}{issue.preheader}{issue.blocks}"
        assert issue.blocks[1]["items"][0]["title"] == "{ { nonsense } }"


@pytest.mark.parametrize("loosen", ["long link", "braces"])
def test_an_entry_no_issue_can_hold_is_a_feed_error_not_a_500_nor_a_stuck_feed(
    fclient: TestClient,
    editor: dict[str, str],
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
    loosen: str,
) -> None:
    # Take away the parser's own care, so the issue's checks are what refuses the entries.
    if loosen == "long link":
        monkeypatch.setattr(feed_parse, "LINK_MAX", feed_parse.KEY_LINK_MAX)
        news = [entry(2), entry(3, link=LONG_LINK)]  # a link fits the lead, not the list
    else:
        monkeypatch.setattr(feed_parse, "inert_braces", lambda text: text)
        news = [entry(3, title="Using {{ name }} templates"), entry(2)]  # the subject
    fid = primed_feed(fclient, editor, feed_server)
    feed_server.publish(*news)
    failed = poll(fclient, editor, fid)["feed"]
    assert failed["failures"] == 1 and "made no issue" in failed["last_error"]
    assert failed["items_seen"] == 3  # seen: never tried again
    monkeypatch.undo()
    feed_server.publish(entry(4))
    healed = poll(fclient, editor, fid)
    assert healed["issue_id"] is not None
    assert healed["feed"]["failures"] == 0 and healed["feed"]["items_seen"] == 4


def test_a_refused_feed_address_names_the_feeds_own_setting(
    client: TestClient, editor: dict[str, str], feed_server: FeedServer
) -> None:
    fid = client.post("/feeds", json={"url": feed_server.url}, headers=editor).json()["id"]
    error = poll(client, editor, fid)["feed"]["last_error"]
    assert "MORNINGPOST_FEEDS_ALLOW_PRIVATE=true" in error and "WEBHOOK" not in error
    refused = client.post("/feeds", json={"url": "ftp://wire.example/feed"}, headers=editor)
    assert refused.status_code == 422 and "webhook" not in refused.text.lower()
