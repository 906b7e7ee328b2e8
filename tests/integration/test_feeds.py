"""RSS/Atom to email against a feed served by the test over HTTP on loopback: ETag and 304,
one issue per batch of new entries, no back catalogue, and feeds that are down, malformed,
huge or redirect inward."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.automations import feed_fetch
from app.automations.feeds import poll_feed
from app.context import Context
from app.db import session_scope
from app.models import Feed, Issue, utcnow
from app.webhooks import fetch as fetch_module
from tests.console_support import add_account, sign_in
from tests.feed_support import FeedServer, entry
from tests.helpers import add_subscribers
from tests.smtp_server import free_port


def poll(client: TestClient, editor: dict[str, str], feed_id: int) -> dict[str, Any]:
    """Poll a feed now through the API."""
    resp = client.post(f"/feeds/{feed_id}/poll", headers=editor)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def test_new_entries_become_one_issue_per_batch_and_a_304_makes_none(
    fclient: TestClient, fctx: Context, editor: dict[str, str], feed_server: FeedServer
) -> None:
    feed_server.publish(entry(1), entry(2))
    feed = fclient.post("/feeds", json={"url": feed_server.url, "every": "PT1H"}, headers=editor)
    assert feed.status_code == 201, feed.text
    fid = feed.json()["id"]
    first = poll(fclient, editor, fid)
    assert first["issue_id"] is None  # the back catalogue is recorded, not mailed
    assert first["feed"]["items_seen"] == 2 and first["feed"]["title"] == "AI Wire"
    assert poll(fclient, editor, fid)["issue_id"] is None  # 304: nothing new
    assert feed_server.requests[-1]["if-none-match"] == '"v1"'
    feed_server.publish(entry(3), entry(4), entry(5))
    made = poll(fclient, editor, fid)
    assert made["issue_id"] is not None and made["feed"]["items_seen"] == 5
    with session_scope(fctx.sessions) as session:
        issue = session.get_one(Issue, made["issue_id"])
        assert (issue.status, issue.subject) == ("draft", "Story 3")
        lead, links = issue.blocks
        assert lead["type"] == "lead" and lead["title"] == "Story 3"
        # Sanitised: the summary's markup is gone, its words stay; the link is kept.
        assert "<" not in lead["body"] and "Summary of story 3" in lead["body"]
        assert "https://wire.example/3" in lead["body"]
        assert [i["title"] for i in links["items"]] == ["Story 4", "Story 5"]
    assert poll(fclient, editor, fid)["issue_id"] is None  # 304 again
    feed_server.publish(entry(6))
    assert poll(fclient, editor, fid)["issue_id"] not in (None, made["issue_id"])
    listed = fclient.get("/feeds", headers=editor).json()
    assert [f["items_seen"] for f in listed] == [6]


def test_send_mode_sends_the_issue_to_every_reader(
    fclient: TestClient, fctx: Context, editor: dict[str, str], feed_server: FeedServer
) -> None:
    add_subscribers(fctx, 3)
    body = {"url": feed_server.url, "every": "PT1H", "mode": "send", "max_items": 2}
    fid = fclient.post("/feeds", json=body, headers=editor).json()["id"]
    poll(fclient, editor, fid)
    feed_server.publish(entry(1), entry(2), entry(3))
    made = poll(fclient, editor, fid)
    stats = fclient.get(f"/issues/{made['issue_id']}/stats", headers=editor).json()
    assert stats["recipients"] == 3
    with session_scope(fctx.sessions) as session:
        issue = session.get_one(Issue, made["issue_id"])
        assert issue.status == "sending"
        assert len(issue.blocks[1]["items"]) == 1  # max_items 2: the lead and one link


def test_entries_are_known_by_guid_or_link_and_nameless_ones_skipped(
    fclient: TestClient, editor: dict[str, str], feed_server: FeedServer
) -> None:
    fid = fclient.post("/feeds", json={"url": feed_server.url}, headers=editor).json()["id"]
    poll(fclient, editor, fid)
    by_link = {"title": "Linked", "link": "https://wire.example/linked"}
    nameless = {"title": "No guid, no link"}
    feed_server.publish(by_link, nameless)
    assert poll(fclient, editor, fid)["feed"]["items_seen"] == 1
    feed_server.publish()  # a new version, the same entries
    assert poll(fclient, editor, fid)["issue_id"] is None


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ((500, {}, b"oops"), "HTTP 500"),
        ((200, {}, b"<html><body>Not a feed</body></html>"), "Not an RSS or Atom feed"),
        ((302, {"Location": "http://127.0.0.1:1/elsewhere"}, b""), "ConnectionRefused"),
    ],
)
def test_a_broken_feed_shows_an_alert_crashes_nothing_and_recovers(
    fclient: TestClient,
    editor: dict[str, str],
    feed_server: FeedServer,
    override: tuple[int, dict[str, str], bytes],
    error: str,
) -> None:
    fid = fclient.post("/feeds", json={"url": feed_server.url}, headers=editor).json()["id"]
    feed_server.override = override
    got = poll(fclient, editor, fid)["feed"]
    assert error in (got["last_error"] or "") and got["failures"] == 1
    assert got["next_poll_at"] > got["last_poll_at"]  # tried again later
    feed_server.override = None
    feed_server.publish(entry(1))
    healed = poll(fclient, editor, fid)["feed"]
    assert healed["last_error"] is None and healed["failures"] == 0 and healed["items_seen"] == 1


def test_a_huge_feed_is_refused_by_size(
    fclient: TestClient,
    editor: dict[str, str],
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed_fetch, "MAX_FEED_BYTES", 2048)
    feed_server.publish(*(entry(n, summary="x" * 500) for n in range(20)))
    fid = fclient.post("/feeds", json={"url": feed_server.url}, headers=editor).json()["id"]
    got = poll(fclient, editor, fid)["feed"]
    assert "larger than 2048 bytes" in got["last_error"]


def test_private_addresses_and_inward_redirects_are_refused_by_default(
    client: TestClient,
    ctx: Context,
    editor: dict[str, str],
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without FEEDS_ALLOW_PRIVATE a loopback feed is refused before any connection.
    fid = client.post("/feeds", json={"url": feed_server.url}, headers=editor).json()["id"]
    got = poll(client, editor, fid)["feed"]
    assert "private" in got["last_error"] or "loopback" in got["last_error"]
    assert feed_server.requests == []
    # A public name (stood in for by the test server) that redirects to a private address:
    # the redirect's target is checked like the first address, and refused.
    real_check = fetch_module.check_addresses

    def check(host: str, addresses: list[str], allow_private: bool, setting: str) -> list[str]:
        if host == "wire.example":  # the "public" first hop only
            return ["127.0.0.1"]
        return real_check(host, addresses, allow_private, setting)

    monkeypatch.setattr(fetch_module, "resolve", lambda target: ["127.0.0.1"])
    monkeypatch.setattr(fetch_module, "check_addresses", check)
    port = feed_server.httpd.server_address[1]
    inward = f"http://localhost:{free_port()}/admin"
    feed_server.override = (302, {"Location": inward}, b"")
    fid = client.post(
        "/feeds", json={"url": f"http://wire.example:{port}/feed.xml"}, headers=editor
    )
    got = poll(client, editor, fid.json()["id"])["feed"]
    assert len(feed_server.requests) == 1  # the first hop, and nothing at the redirect's target
    assert "private" in got["last_error"] or "loopback" in got["last_error"]


def test_bad_feeds_are_refused_and_feeds_need_an_editor(
    client: TestClient, editor: dict[str, str]
) -> None:
    for body in (
        {"url": "ftp://wire.example/feed"},
        {"url": "https://user:pw@wire.example/feed"},
        {"url": "https://wire.example/feed", "every": "hourly"},
        {"url": "https://wire.example/feed", "every": "PT5S"},
        {"url": "https://wire.example/feed", "mode": "publish"},
        {"url": "https://wire.example/feed", "max_items": 0},
    ):
        assert client.post("/feeds", json=body, headers=editor).status_code == 422, body
    assert client.post("/feeds", json={"url": "https://wire.example/f"}).status_code == 401
    assert client.get("/feeds/999", headers=editor).status_code == 404


def test_two_pollers_at_once_poll_a_feed_once(
    fctx: Context, fclient: TestClient, editor: dict[str, str], feed_server: FeedServer
) -> None:
    fid = fclient.post("/feeds", json={"url": feed_server.url}, headers=editor).json()["id"]

    async def both() -> None:
        await asyncio.gather(poll_feed(fctx, fid), poll_feed(fctx, fid))

    asyncio.run(both())
    assert len(feed_server.requests) == 1


def test_the_console_feeds_page_adds_lists_polls_soon_and_removes(
    fclient: TestClient, fctx: Context, feed_server: FeedServer
) -> None:
    add_account(fctx)
    csrf = sign_in(fclient)
    page = fclient.post(
        "/editor/feeds",
        data={"csrf_token": csrf, "url": feed_server.url, "every": "daily 06:00", "mode": "draft"},
    )
    assert page.status_code == 200 and "The feed is added" in page.text
    assert feed_server.url in page.text and "every daily 06:00" in page.text
    bad = fclient.post(
        "/editor/feeds", data={"csrf_token": csrf, "url": "ftp://x", "every": "PT1H"}
    )
    assert bad.status_code == 422 and 'value="ftp://x"' in bad.text  # the form keeps the input
    forged = fclient.post("/editor/feeds", data={"url": feed_server.url})
    assert forged.status_code == 403
    with session_scope(fctx.sessions) as session:
        (feed,) = session.query(Feed).all()
        feed.next_poll_at = utcnow() + timedelta(days=1)
        feed.last_error = "The feed answered HTTP 500."
    assert "⚠ The feed answered HTTP 500." in fclient.get("/editor/feeds").text
    soon = fclient.post(f"/editor/feeds/{feed.id}/poll", data={"csrf_token": csrf})
    assert "polled within a few seconds" in soon.text
    with session_scope(fctx.sessions) as session:
        assert session.get_one(Feed, feed.id).next_poll_at <= utcnow()
    gone = fclient.post(f"/editor/feeds/{feed.id}/remove", data={"csrf_token": csrf})
    assert "The feed is removed" in gone.text and feed_server.url not in gone.text
