"""Fetch a feed as the webhook rules allow: public addresses only (unless FEEDS_ALLOW_PRIVATE),
every redirect checked the same way, a size cap, a timeout, and conditional requests."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from app.webhooks.fetch import FetchError, fetch
from app.webhooks.safety import redirect_location

MAX_FEED_BYTES = 5 * 1024 * 1024
FEEDS_PRIVATE_SETTING = "MORNINGPOST_FEEDS_ALLOW_PRIVATE"
MAX_REDIRECTS = 5
TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class FeedResponse:
    """What a poll got: 200 with a body, or 304 (nothing new)."""

    status: int
    body: bytes
    etag: str | None
    last_modified: str | None


async def fetch_feed(
    url: str, etag: str | None, last_modified: str | None, *, allow_private: bool
) -> FeedResponse:
    """GET a feed, following checked redirects; FetchError for anything but 200 or 304."""
    headers = {
        "Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.5"
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    for _ in range(MAX_REDIRECTS + 1):
        got = await fetch(
            url,
            timeout=TIMEOUT_SECONDS,
            allow_private=allow_private,
            max_bytes=MAX_FEED_BYTES,
            headers=headers,
            private_setting=FEEDS_PRIVATE_SETTING,
        )
        if got.status in (301, 302, 303, 307, 308) and got.headers.get("location"):
            # The next hop is checked like the first one: a public URL may redirect inward.
            url = urljoin(url, redirect_location(got.headers["location"]))
            continue
        if got.status in (200, 304):
            return FeedResponse(
                got.status, got.body, got.headers.get("etag"), got.headers.get("last-modified")
            )
        raise FetchError(f"The feed answered HTTP {got.status}.")
    raise FetchError(f"More than {MAX_REDIRECTS} redirects.")
