"""Rendered public pages kept in memory until the database's page stamp moves; ETags and 304s.

A spike of readers on one issue costs one render per process, then a dictionary look-up per
request, made before routing (CachedPages). Each process asks the database at most every
PAGE_CACHE_SECONDS (one primary-key read, shared by all requests waiting at that moment)
whether anything a page shows changed; triggers on `issues` move the stamp in the writer's own
transaction (migration 0017), and a process with other code, templates or newsletter settings
moves it when it starts. So an edit, a send, a cancel or a deletion shows in every process
within PAGE_CACHE_SECONDS.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Generic, TypeVar

from anyio import to_thread
from sqlalchemy import Engine
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.models import utcnow
from app.web.stamp import Stamp, StampBusy, claim_site, read_stamp, site_fingerprint

T = TypeVar("T")

# A proxy or browser may keep a page a minute, then show it while it asks again (10 min), or
# when we are down (a day): an archive page changes rarely, and a fix shows within minutes.
CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=600, stale-if-error=86400"
ONE_SECOND = timedelta(seconds=1)
PAGES_KEPT = 256  # issues readers are reading at once, and the lists; least recently used go


def page_clock() -> datetime:
    """Return the moment pages are dated against (Page._dated; tests move it on)."""
    return utcnow()


class Recent(Generic[T]):
    """A value fetched in a worker thread and trusted for `seconds` after a successful fetch.

    Callers arriving while a fetch runs wait for that same fetch; a failed fetch is not kept,
    so the next caller tries again. The next fetch starts in the background once four fifths of
    the time have passed, so under steady traffic nobody waits for it and the value is still
    never trusted for longer than `seconds` after its fetch began.
    """

    def __init__(
        self,
        fetch: Callable[[], T],
        seconds: float,
        *,
        executor: ThreadPoolExecutor | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        # A fetch of its own thread (the health check's) never queues behind busy routes.
        self._executor = executor
        self._on_close = on_close
        self._fetch = fetch
        self._seconds = seconds
        self._value: T | None = None
        self._until = 0.0  # loop time; 0 = never fetched, or the last fetch failed
        self._ahead = 0.0  # loop time from which the next fetch starts in the background
        self._running: asyncio.Future[T] | None = None

    async def get(self) -> T:
        """Return the value, fetching it again when it is older than `seconds`."""
        if self.fresh():
            return self._value  # type: ignore[return-value]  # set with _until
        # Shielded: a reader who hangs up must not cancel the fetch others are waiting for.
        return await asyncio.shield(self._start(asyncio.get_running_loop()))

    def fresh(self) -> bool:
        """Tell whether the last fetch succeeded less than `seconds` ago (never waits)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now >= self._ahead:
            self._start(loop)
        return now < self._until

    def close(self) -> None:
        """Release what the fetch owns (its thread, its connection)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        if self._on_close is not None:
            self._on_close()

    def peek(self) -> T | None:
        """Return the value while it is trusted, else None (never waits)."""
        return self._value if self.fresh() else None

    def _start(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[T]:
        running = self._running
        if running is None or running.get_loop() is not loop:
            running = self._running = loop.create_task(self._refresh())
            running.add_done_callback(_retrieve)
        return running

    async def _refresh(self) -> T:
        loop = asyncio.get_running_loop()
        try:
            started = loop.time()
            if self._executor is not None:
                value = await loop.run_in_executor(self._executor, self._fetch)
            else:
                value = await to_thread.run_sync(self._fetch)
            self._value, self._until = value, started + self._seconds
            self._ahead = started + self._seconds * 0.8
            return value
        finally:
            self._running = None


@dataclass(frozen=True)
class Page:
    """A rendered page with its validators, ready to send as 200 or 304."""

    body: bytes
    etag: str
    modified: datetime | None  # whole seconds, as Last-Modified says it (None: not sent yet)
    headers: tuple[tuple[bytes, bytes], ...]  # of the 200
    validators: tuple[tuple[bytes, bytes], ...]  # of the 304
    media_type: str
    changed_at: datetime  # the stamp's moment, to the microsecond

    @classmethod
    def build(
        cls,
        body: bytes,
        media_type: str,
        changed_at: datetime,
        now: datetime | None = None,
        lag: timedelta = timedelta(0),
    ) -> Page:
        """Wrap a rendered body: a strong ETag from its bytes, Last-Modified from the stamp.

        lag: how long after the second of the change the date may be handed out (see _dated).
        """
        etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
        return cls._dated(body, etag, media_type, changed_at, now or page_clock(), lag)

    @classmethod
    def _dated(
        cls,
        body: bytes,
        etag: str,
        media_type: str,
        changed_at: datetime,
        now: datetime,
        lag: timedelta,
    ) -> Page:
        # Last-Modified has whole seconds. Handed out during the second of the change, a
        # second change in that second would carry the same date, and an If-Modified-Since
        # would get a 304 for the old page; so until that second is over only the ETag
        # validates (RFC 9110 8.8.2.2, as Apache does), then settled() adds the date. `lag`
        # adds the time a process may trust its last look at the stamp (PAGE_CACHE_SECONDS):
        # until then a change late in that second may not have been seen yet.
        second = changed_at.replace(microsecond=0)
        modified = second if now >= second + ONE_SECOND + lag else None
        validators: tuple[tuple[bytes, bytes], ...] = ((b"etag", etag.encode()),)
        if modified is not None:
            validators += ((b"last-modified", format_datetime(modified, usegmt=True).encode()),)
        validators += ((b"cache-control", CACHE_CONTROL.encode()),)
        headers = (
            (b"content-type", media_type.encode()),
            (b"content-length", str(len(body)).encode()),
            *validators,
        )
        return cls(body, etag, modified, headers, validators, media_type, changed_at)

    def settled(self, now: datetime, lag: timedelta) -> Page:
        """Return the page with its Last-Modified once the second of its change is over."""
        if self.modified is not None:
            return self
        page = self._dated(self.body, self.etag, self.media_type, self.changed_at, now, lag)
        return page if page.modified is not None else self

    def not_modified(self, request_headers: Headers) -> bool:
        """Tell whether the client's copy is this one (If-None-Match, else If-Modified-Since)."""
        tags = request_headers.get("if-none-match")
        if tags is not None:
            # Weak comparison (RFC 9110 13.1.2): a proxy may have marked our tag weak.
            wanted = {tag.strip().removeprefix("W/") for tag in tags.split(",")}
            return "*" in wanted or self.etag in wanted
        since = request_headers.get("if-modified-since")
        if since is None:
            return False
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False  # not a date: answer in full
        if self.modified is None:
            return False  # no date was handed out: only the ETag can say it is current
        return when.tzinfo is not None and self.modified <= when

    def response(self, request_headers: Headers) -> Response:
        """Return 304 when the client's copy is current, else the page."""
        if self.not_modified(request_headers):
            return _Prepared(304, b"", self.validators)
        return _Prepared(200, self.body, self.headers)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a shared task's error as seen: its waiters got it, or all of them hung up."""
    if not task.cancelled():
        task.exception()


class _Prepared(Response):
    """A response whose bytes and headers were made once; only the header list is copied."""

    def __init__(self, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...]) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = list(headers)  # the middlewares append to it


Render = Callable[[], tuple[bytes, str]]  # (body, media type), run in a worker thread


class PageCache:
    """The rendered public pages of one process, each valid while the stamp stays the same."""

    def __init__(self, engine: Engine, settings: Settings, size: int = PAGES_KEPT) -> None:
        self._engine = engine
        self._site = site_fingerprint(settings)
        self._claimed = False
        self._stamp: Recent[Stamp] = Recent(self._check, settings.page_cache_seconds)
        self._pages: OrderedDict[str, tuple[int, Page]] = OrderedDict()
        self._renders: dict[tuple[str, int], asyncio.Future[Page]] = {}
        self._size = size
        # PAGE_CACHE_SECONDS: how stale this process's view of the stamp may be (Page._dated).
        self._lag = timedelta(seconds=settings.page_cache_seconds)

    def hit(self, key: str) -> Page | None:
        """Return the page under `key` when it is current and the stamp was checked lately."""
        held = self._pages.get(key)
        if held is None:
            return None  # not a cached page: no reason to look at the stamp
        stamp = self._stamp.peek()
        if stamp is None or held[0] != stamp.counter:
            return None
        return self._settled(key, *held)

    def _settled(self, key: str, counter: int, page: Page) -> Page:
        if page.modified is None:  # rendered in the second of its change (Page._dated)
            page = page.settled(page_clock(), self._lag)
            self._pages[key] = (counter, page)
        return page

    async def page(self, key: str, render: Render) -> Page:
        """Return the page under `key`, rendering it (once, for all who wait) when stale."""
        stamp = await self._stamp.get()
        held = self._pages.get(key)
        if held is not None and held[0] == stamp.counter:
            self._pages.move_to_end(key)
            return self._settled(key, *held)
        flight = (key, stamp.counter)
        running = self._renders.get(flight)
        if running is None or running.get_loop() is not asyncio.get_running_loop():
            running = asyncio.ensure_future(self._render(key, stamp, render))
            self._renders[flight] = running
            running.add_done_callback(lambda done: self._renders.pop(flight, None))
            running.add_done_callback(_retrieve)
        return await asyncio.shield(running)

    async def _render(self, key: str, stamp: Stamp, render: Render) -> Page:
        def build() -> Page:
            body, media_type = render()
            return Page.build(body, media_type, stamp.changed_at, lag=self._lag)

        # Rendered after the stamp was read: a change committed in between is in the page
        # already, and the next check re-renders it under the new stamp anyway.
        page = await to_thread.run_sync(build)
        self._pages[key] = (stamp.counter, page)
        self._pages.move_to_end(key)
        while len(self._pages) > self._size:
            self._pages.popitem(last=False)
        return page

    def _check(self) -> Stamp:
        if not self._claimed:
            try:
                claim_site(self._engine, self._site, utcnow())
                self._claimed = True
            except StampBusy:
                pass  # another writer holds SQLite's lock: claim at the next check
        stamp = read_stamp(self._engine)
        if stamp is None:  # the row went away (a truncated table): make it again
            claim_site(self._engine, self._site, utcnow())
            stamp = read_stamp(self._engine)
        if stamp is None:
            raise RuntimeError("the page_stamps row cannot be created")
        return stamp


# What /healthz says while its last check holds: the bytes JSONResponse({"status": "ok"}) sends.
_HEALTHY = (
    b'{"status":"ok"}',
    ((b"content-length", b"15"), (b"content-type", b"application/json")),
)


class CachedPages:
    """Answer what memory already knows before routing (pure ASGI): cached pages, a healthy probe.

    Pages are kept under their path, so any path found here is one of the cached routes; a
    miss, a stale stamp or any other request goes on to the app, whose handler renders and
    fills the cache. /healthz is answered here only while its last database check holds
    (the healthz handler makes that check and answers everything else). Placed inside the host
    check, the body limits and the security headers.
    """

    def __init__(self, app: ASGIApp, cache: PageCache, health: Recent[None]) -> None:
        self.app = app
        self.cache = cache
        self.health = health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the cached answer, or hand the request on."""
        # HEAD as GET: the same status and headers; the server sends no body with it.
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path = scope["path"]
            if path == "/healthz" and self.health.fresh():
                await _Prepared(200, *_HEALTHY)(scope, receive, send)
                return
            page = self.cache.hit(path)
            if page is not None:
                await page.response(Headers(scope=scope))(scope, receive, send)
                return
        await self.app(scope, receive, send)
