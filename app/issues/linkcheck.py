"""Do the issue's links answer? HEAD (then GET on 405/501), public addresses only, cached.

Slow network I/O, so it is a warning-only part of the preflight, run on request (the check
endpoint and the console's checklist), never in the send gate. Each request goes through the
webhook sender's checks (app.webhooks.safety): the host must resolve only to public addresses
(unless private ones are allowed), the connection goes to the very address that was checked,
and every redirect is checked the same way before it is followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

import h11

from app.errors import InvalidInput
from app.webhooks.safety import (
    Target,
    check_addresses,
    parse_target,
    redirect_location,
    resolve,
)

USER_AGENT = "MorningPost-LinkCheck/1 (+pre-send check of a newsletter)"
LINK_CHECK_PRIVATE_SETTING = "MORNINGPOST_LINK_CHECK_ALLOW_PRIVATE"
MAX_REDIRECTS = 5
MAX_LINKS = 100  # per check; an issue with more gets the first hundred checked
TOTAL_FACTOR = 3  # a whole check takes at most this many per-link timeouts


@dataclass(frozen=True)
class LinkStatus:
    """What a link gave: the final status code, or why there was none."""

    url: str
    status: int | None
    error: str | None = None
    refused: bool = False  # never fetched: a private address, or not a web URL
    length: int | None = None  # Content-Length of the final answer, when given

    @property
    def ok(self) -> bool:
        """Tell whether the link answered below 400."""
        return self.status is not None and self.status < 400


class LinkChecker:
    """Check links with bounded time and concurrency; results are kept for `cache_seconds`."""

    def __init__(
        self,
        *,
        timeout: float,
        concurrency: int,
        cache_seconds: float,
        allow_private: bool,
        clock: Callable[[], float] = time.monotonic,
        resolver: Callable[[Target], list[str]] = resolve,
    ) -> None:
        self.timeout = timeout
        self.concurrency = concurrency
        self.cache_seconds = cache_seconds
        self.allow_private = allow_private
        self.clock = clock
        self.resolver = resolver  # blocking (getaddrinfo); run in a thread
        self._cache: dict[str, tuple[float, LinkStatus]] = {}
        self._gate: asyncio.Semaphore | None = None

    async def check(self, urls: list[str]) -> dict[str, LinkStatus]:
        """Return the status of each distinct URL (at most MAX_LINKS of them).

        The whole check ends within TOTAL_FACTOR x timeout: links still waiting then are
        reported as not checked (and not cached), so a page never waits minutes.
        """
        wanted = list(dict.fromkeys(urls))[:MAX_LINKS]
        now = self.clock()
        results: dict[str, LinkStatus] = {}
        todo: list[str] = []
        for url in wanted:
            cached = self._cache.get(url)
            if cached is not None and cached[0] > now:
                results[url] = cached[1]
            else:
                todo.append(url)
        if self._gate is None:
            # One gate per checker (per process): two checks at once share the concurrency.
            self._gate = asyncio.Semaphore(self.concurrency)
        gate = self._gate

        async def one(url: str) -> None:
            async with gate:
                status = await self.fetch(url)
            results[url] = status
            self._cache[url] = (self.clock() + self.cache_seconds, status)

        tasks = [asyncio.create_task(one(u)) for u in todo]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.timeout * TOTAL_FACTOR)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for url in todo:
            results.setdefault(
                url,
                LinkStatus(url, None, "the check ran out of time before this link", refused=True),
            )
        self._prune()
        return {u: results[u] for u in wanted}

    def _prune(self) -> None:
        now = self.clock()
        for url in [u for u, (until, _) in self._cache.items() if until <= now]:
            del self._cache[url]

    async def fetch(self, url: str) -> LinkStatus:
        """Follow `url` (checking each hop) and return its final status; never raises."""
        current = url
        try:
            async with asyncio.timeout(self.timeout):
                for _ in range(MAX_REDIRECTS + 1):
                    target = parse_target(current)
                    addresses = await asyncio.to_thread(self.resolver, target)
                    addresses = check_addresses(
                        target.host, addresses, self.allow_private, LINK_CHECK_PRIVATE_SETTING
                    )
                    status, location, length = await _ask(addresses[0], target, "HEAD")
                    if status in (405, 501):  # HEAD not implemented: ask for the page itself
                        status, location, length = await _ask(addresses[0], target, "GET")
                    if status in (301, 302, 303, 307, 308) and location:
                        current = urljoin(current, redirect_location(location))
                        continue
                    return LinkStatus(url, status, length=length)
                return LinkStatus(url, None, f"more than {MAX_REDIRECTS} redirects")
        except InvalidInput as exc:
            return LinkStatus(url, None, exc.message, refused=True)
        except TimeoutError:
            return LinkStatus(url, None, f"no answer within {self.timeout:g} s")
        except (OSError, ssl.SSLError, h11.ProtocolError, ValueError) as exc:
            return LinkStatus(url, None, f"{type(exc).__name__}: {exc}"[:300])


async def _ask(address: str, target: Target, method: str) -> tuple[int, str | None, int | None]:
    """Send one request to the checked address; return (status, Location, Content-Length)."""
    tls = ssl.create_default_context() if target.scheme == "https" else None
    # Connect to the checked address; the name only goes into SNI and the Host header.
    reader, writer = await asyncio.open_connection(
        address, target.port, ssl=tls, server_hostname=target.host if tls else None
    )
    try:
        conn = h11.Connection(our_role=h11.CLIENT)
        headers = [
            ("Host", target.host_header),
            ("User-Agent", USER_AGENT),
            ("Accept", "*/*"),
            ("Connection", "close"),
        ]
        request = h11.Request(method=method, target=target.path, headers=headers)
        writer.write(conn.send(request) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            if isinstance(event, h11.Response):
                # Only the status line and headers matter: the body is never read.
                found = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
                length = found.get("content-length")
                return (
                    event.status_code,
                    found.get("location"),
                    int(length) if length and length.isdigit() else None,
                )
            if isinstance(event, h11.ConnectionClosed):
                raise OSError("connection closed before a response")
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
