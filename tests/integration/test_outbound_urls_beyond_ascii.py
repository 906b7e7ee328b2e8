"""Outbound requests to URLs and from answers that are not plain ASCII: an international
path in a webhook URL, an ETag or a redirect with bytes over 127 from a feed server. Each is
sent as ASCII on the wire (percent-encoded, or byte for byte); none may raise out of the
webhook batch or the feed poll. Every server here listens on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.issues.linkcheck import LinkChecker
from app.models import Subscriber, WebhookDelivery, WebhookDeliveryStatus, utcnow
from app.subscribers.service import unsubscribe
from app.tokens import ListToken
from app.webhooks import sender as sender_module
from app.webhooks.client import PostResult
from app.webhooks.sender import WebhookSender
from tests.delivery_support import add_subscribers
from tests.feed_support import entry, rss


class Recorder:
    """An HTTP server on loopback: records each request's raw target and headers; answers
    from `routes` (path → (status, raw header pairs, body)), else 404."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, bytes]]] = []
        self.routes: dict[str, tuple[int, list[tuple[bytes, bytes]], bytes]] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                # The raw header bytes, as latin-1 round trips them.
                raw = {k.lower(): v.encode("latin-1") for k, v in self.headers.items()}
                outer.requests.append((self.command, self.path, raw))
                status, headers, body = outer.routes.get(self.path, (404, [], b""))
                self.wfile.write(f"HTTP/1.1 {status} X\r\n".encode())
                for name, value in [*headers, (b"Content-Length", str(len(body)).encode())]:
                    self.wfile.write(name + b": " + value + b"\r\n")
                self.wfile.write(b"Connection: close\r\n\r\n")
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """Return a URL on this server."""
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """Serve on loopback."""
    r = Recorder()
    yield r
    r.close()


def test_a_webhook_url_with_an_international_path_is_posted_and_spoils_no_batch(
    client: TestClient, ctx: Context, editor: dict[str, str], recorder: Recorder
) -> None:
    ctx.settings.webhook_allow_private = True  # the receiver is on loopback
    for path in ("/hooks/%C3%A9t%C3%A9?for=caf%C3%A9", "/plain"):
        recorder.routes[path] = (200, [], b"")
    for url in (recorder.url("/hooks/été?for=café"), recorder.url("/plain")):
        resp = client.post(
            "/webhooks", json={"url": url, "events": ["subscriber.unsubscribed"]}, headers=editor
        )
        assert resp.status_code == 201, resp.text
    (sub,) = add_subscribers(ctx, ["a@example.org"])
    with session_scope(ctx.sessions) as s:
        nonce = s.get_one(Subscriber, sub).token_nonce
        unsubscribe(s, ListToken(sub, nonce), utcnow())

    async def twice() -> tuple[int, int]:
        sender = WebhookSender(ctx)
        return await sender.send_due(), await sender.send_due()

    first, second = asyncio.run(twice())

    assert (first, second) == (2, 0)
    paths = sorted(path for method, path, _ in recorder.requests if method == "POST")
    # Both endpoints got the event once: the international path as UTF-8 escapes.
    assert paths == ["/hooks/%C3%A9t%C3%A9?for=caf%C3%A9", "/plain"]
    with session_scope(ctx.sessions) as s:
        statuses = list(s.scalars(select(WebhookDelivery.status)))
    assert statuses == [WebhookDeliveryStatus.delivered] * 2


def test_a_post_that_raises_fails_its_own_event_and_the_batch_is_still_recorded(
    client: TestClient,
    ctx: Context,
    editor: dict[str, str],
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx.settings.webhook_allow_private = True
    recorder.routes["/plain"] = (200, [], b"")
    for path in ("/boom", "/plain"):
        resp = client.post(
            "/webhooks",
            json={"url": recorder.url(path), "events": ["subscriber.unsubscribed"]},
            headers=editor,
        )
        assert resp.status_code == 201, resp.text
    real = sender_module.post_event

    async def post_or_raise(url: str, *args: object, **kwargs: object) -> PostResult:
        if url.endswith("/boom"):
            raise RuntimeError("a bug in one POST")
        return await real(url, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sender_module, "post_event", post_or_raise)
    (sub,) = add_subscribers(ctx, ["a@example.org"])
    with session_scope(ctx.sessions) as s:
        nonce = s.get_one(Subscriber, sub).token_nonce
        unsubscribe(s, ListToken(sub, nonce), utcnow())

    assert asyncio.run(WebhookSender(ctx).send_due()) == 2

    with session_scope(ctx.sessions) as s:
        rows = {
            d.webhook_id: (d.status, d.attempts, d.last_error)
            for d in s.scalars(select(WebhookDelivery))
        }
    boom, plain = sorted(rows)
    assert rows[plain] == (WebhookDeliveryStatus.delivered, 1, None)
    assert rows[boom][:2] == (WebhookDeliveryStatus.pending, 1)  # retried later, counted
    assert "RuntimeError: a bug in one POST" in (rows[boom][2] or "")
    assert [path for _, path, _ in recorder.requests] == ["/plain"]


def test_a_feed_etag_with_bytes_over_127_goes_back_byte_for_byte(
    fclient: TestClient, editor: dict[str, str], recorder: Recorder
) -> None:
    etag = b'"caf\xc3\xa9-1"'  # raw UTF-8 in a header, as some servers send it
    recorder.routes["/feed.xml"] = (200, [(b"ETag", etag)], rss([entry(1)]))
    fid = fclient.post("/feeds", json={"url": recorder.url("/feed.xml")}, headers=editor)
    fid.raise_for_status()
    for _ in range(2):
        resp = fclient.post(f"/feeds/{fid.json()['id']}/poll", headers=editor)
        assert resp.status_code == 200, resp.text
        assert resp.json()["feed"]["last_error"] is None
    # The second poll is conditional on exactly the bytes the server sent.
    assert recorder.requests[-1][2]["if-none-match"] == etag


def test_a_feed_redirect_to_a_path_beyond_ascii_is_followed(
    fclient: TestClient, editor: dict[str, str], recorder: Recorder
) -> None:
    recorder.routes["/feed.xml"] = (302, [(b"Location", b"/fl\xc3\xbcx.xml")], b"")
    recorder.routes["/fl%C3%BCx.xml"] = (200, [], rss([entry(1)]))
    fid = fclient.post("/feeds", json={"url": recorder.url("/feed.xml")}, headers=editor)
    fid.raise_for_status()
    resp = fclient.post(f"/feeds/{fid.json()['id']}/poll", headers=editor)
    assert resp.status_code == 200, resp.text
    feed = resp.json()["feed"]
    assert feed["last_error"] is None
    assert feed["items_seen"] == 1
    assert [path for _, path, _ in recorder.requests] == ["/feed.xml", "/fl%C3%BCx.xml"]


def test_the_link_check_follows_international_paths_and_redirects(recorder: Recorder) -> None:
    recorder.routes["/caf%C3%A9"] = (200, [], b"")
    recorder.routes["/old"] = (301, [(b"Location", b"/n\xc3\xa9")], b"")
    recorder.routes["/n%C3%A9"] = (200, [], b"")
    checker = LinkChecker(timeout=5, concurrency=2, cache_seconds=60, allow_private=True)
    urls = [recorder.url("/café"), recorder.url("/old")]
    result = asyncio.run(checker.check(urls))
    assert [(result[u].status, result[u].error) for u in urls] == [(200, None), (200, None)]
    # Two links are checked at once: their requests may come in either order, the
    # redirect's target always after the redirect.
    paths = [path for method, path, _ in recorder.requests]
    assert sorted(paths) == sorted(["/caf%C3%A9", "/old", "/n%C3%A9"])
    assert paths.index("/old") < paths.index("/n%C3%A9")
