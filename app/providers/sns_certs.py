"""SNS signing certificates, fetched over HTTPS from an allowed host once and kept.

The URL comes from an unauthenticated request (anyone who knows a topic's ARN can send one),
and the fetch happens before any signature can be checked. A certificate fetched is kept, so
SNS's own URLs cost one fetch each; URLs that fail are someone else's, and they are budgeted
per process: past FETCH_FAILURES failed fetches in FETCH_WINDOW_SECONDS, or while
FETCHES_AT_ONCE fetches are under way, a request with an unknown URL is answered 503 at once
(SNS tries again later). Kept certificates still serve, and two requests naming one URL at once
share one fetch.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable

from app.config import Settings
from app.providers.reports import BadSignature
from app.providers.ses import host_allowed
from app.webhooks.fetch import Fetched, FetchError, fetch

MAX_CERTIFICATE_BYTES = 64 * 1024
TIMEOUT_SECONDS = 10.0
_KEEP = 32  # SNS rotates its certificate rarely; a handful of URLs is all a process sees

FETCH_FAILURES = 10  # failed fetches of unknown certificate URLs ...
FETCH_WINDOW_SECONDS = 600.0  # ... per ten minutes, before unknown URLs wait for the window
FETCHES_AT_ONCE = 4  # a request waits on a fetch for up to TIMEOUT_SECONDS: keep few waiting

_cache: dict[str, bytes] = {}


class FetchBudget:
    """At most `failures` failed fetches per `window` seconds and `at_once` fetches at a time."""

    def __init__(
        self,
        failures: int = FETCH_FAILURES,
        window: float = FETCH_WINDOW_SECONDS,
        at_once: int = FETCHES_AT_ONCE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures, self.window, self.at_once, self.clock = failures, window, at_once, clock
        self._failed: deque[float] = deque()
        self._running = 0
        # Requests run on threads and (in tests) on several event loops: a plain lock.
        self._lock = threading.Lock()

    def begin(self) -> str | None:
        """Take a fetch from the budget; return why not, or None when granted."""
        with self._lock:
            now = self.clock()
            while self._failed and self._failed[0] <= now - self.window:
                self._failed.popleft()
            if self._running >= self.at_once:
                return "other certificates are being fetched"
            if len(self._failed) >= self.failures:
                return (
                    f"{self.failures} certificate URLs failed in the last {self.window:g} s; "
                    "not fetched"
                )
            self._running += 1
            return None

    def end(self, *, failed: bool) -> None:
        """Mark a fetch as finished (a failure counts against the budget)."""
        with self._lock:
            self._running -= 1
            if failed:
                self._failed.append(self.clock())


_budget = FetchBudget()
# The fetch under way for each URL, on the loop that runs it: a second request joins it.
_inflight: dict[str, asyncio.Future[bytes]] = {}


class CertificateUnavailable(Exception):
    """The certificate could not be fetched now; SNS should try again later (503)."""


async def certificate(url: str, settings: Settings) -> bytes:
    """Return the PEM at `url`; BadSignature for a URL we never fetch from."""
    if not host_allowed(url, settings.sns_cert_hosts):
        raise BadSignature("SigningCertURL is not an https URL on an allowed SNS host")
    cached = _cache.get(url)
    if cached is not None:
        return cached
    loop = asyncio.get_running_loop()
    running = _inflight.get(url)
    if running is not None and running.get_loop() is loop:
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            if running.cancelled():  # the request that fetched went away mid-fetch
                raise CertificateUnavailable("the certificate fetch was interrupted") from None
            raise
    refused = _budget.begin()
    if refused is not None:
        raise CertificateUnavailable(refused)
    future: asyncio.Future[bytes] = loop.create_future()
    _inflight[url] = future
    try:
        body = await _fetch_certificate(url, settings)
    except asyncio.CancelledError:
        _budget.end(failed=False)
        future.cancel()
        raise
    except Exception as exc:
        _budget.end(failed=True)
        future.set_exception(exc)
        future.exception()  # retrieved: nobody else may be waiting on it
        raise
    else:
        _budget.end(failed=False)
        future.set_result(body)
        return body
    finally:
        if _inflight.get(url) is future:
            del _inflight[url]


async def _fetch_certificate(url: str, settings: Settings) -> bytes:
    got = await _get(url, settings)
    if got.status != 200 or b"-----BEGIN CERTIFICATE-----" not in got.body:
        raise CertificateUnavailable(f"the certificate URL answered {got.status}")
    if len(_cache) >= _KEEP:
        _cache.pop(next(iter(_cache)))
    _cache[url] = got.body
    return got.body


async def confirm_subscription(url: str, settings: Settings) -> None:
    """Visit a SubscribeURL (only on an allowed SNS host); CertificateUnavailable if it fails."""
    if not host_allowed(url, settings.sns_cert_hosts):
        raise BadSignature("SubscribeURL is not an https URL on an allowed SNS host")
    got = await _get(url, settings)
    if got.status != 200:
        raise CertificateUnavailable(f"the SubscribeURL answered {got.status}")


async def _get(url: str, settings: Settings) -> Fetched:
    """GET an SNS URL over HTTPS (the address rules of webhooks); CertificateUnavailable if not."""
    try:
        return await fetch(
            url,
            timeout=TIMEOUT_SECONDS,
            allow_private=settings.webhook_allow_private,
            max_bytes=MAX_CERTIFICATE_BYTES,
            https_only=True,
        )
    except FetchError as exc:
        raise CertificateUnavailable(str(exc)) from None
