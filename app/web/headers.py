"""Host checking and the security headers every HTML answer carries (pure ASGI middlewares)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.web.limits import Responder

# Names a local client, a health probe on the box and the test client use.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "testserver")

# Our own pages: no inline script or style, nothing from elsewhere, never framed.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
# The preview is email HTML alone: inlined styles, remote images, no script at all; it may sit
# in an iframe of our own editor pages.
EMAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; font-src *; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
# An issue's web version is that email HTML inside our site frame: our stylesheet, the sign-up
# form and its small script besides; still no inline script.
ARCHIVE_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src * data:; font-src *; "
    "script-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)
# The API docs page is FastAPI's, with an inline script that starts Swagger UI (assets are
# served locally, see app/apidocs.py): inline script there, and only there.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
_DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
# An issue's web version: the default newsletter's (/archive/x) or another's (/n/a/archive/x).
_ARCHIVE_PATHS = re.compile(r"^/(archive/(?!feed\.xml$)[^/]+|n/[^/]+/archive/[^/]+)$")
_EMAIL_PATHS = re.compile(
    r"^/(archive/(?!feed\.xml$)[^/]+|n/[^/]+/archive/[^/]+|issues/\d+/preview)$"
)


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """Return the Host names answered: BASE_URL's, the local ones, MORNINGPOST_ALLOWED_HOSTS."""
    base = urlsplit(settings.base_url).hostname or ""
    names: Iterable[str] = (base, *LOCAL_HOSTS, *settings.allowed_hosts)
    return frozenset(n.lower().strip("[]") for n in names if n)


def _host_name(value: str) -> str:
    """Return the name in a Host header, without the port (IPv6 literals keep their colons)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class TrustedHosts:
    """Answer 400 to a Host we do not serve, so nothing ever builds a URL from a stranger's name.

    Starlette builds absolute redirects (e.g. a trailing-slash redirect) from the Host
    header: without this, `Host: evil.example` would come back in a Location header.
    """

    def __init__(self, app: ASGIApp, settings: Settings, respond: Responder) -> None:
        self.app = app
        self.hosts = allowed_hosts(settings)
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the Host header of an HTTP request, then hand it on."""
        if scope["type"] == "http":
            host = ""
            for name, value in scope.get("headers", ()):
                if name == b"host":
                    host = value.decode("latin-1")
                    break
            if _host_name(host) not in self.hosts:
                # Not echoed: the answer names no host at all.
                message = "This server does not answer to that host name."
                response = self.respond(Request(scope, receive), 400, "bad_host", message)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# Pages reached by a reader's own signed link: their address, name and tokens are on them, so
# no cache (a browser's disk, a shared proxy) keeps them.
_TOKEN_PATHS = re.compile(r"/(preferences|unsubscribe|confirm|preview)(/|$)")


class SecurityHeaders:
    """Add frame, content-security and referrer headers to HTML answers that lack them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and amend the response headers on the way out."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        email = bool(_EMAIL_PATHS.match(scope["path"]))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # An error on those paths is one of our own pages, not email HTML.
                email_html = email and message["status"] == 200
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                # Page URLs carry tokens: a followed link must not receive them as Referer.
                headers.setdefault("Referrer-Policy", "no-referrer")
                if _TOKEN_PATHS.match(scope["path"]):
                    headers.setdefault("Cache-Control", "private, no-store")
                if headers.get("content-type", "").startswith("text/html"):
                    frames = "SAMEORIGIN" if email_html else "DENY"
                    headers.setdefault("X-Frame-Options", frames)
                    archive = bool(_ARCHIVE_PATHS.match(scope["path"]))
                    csp = (ARCHIVE_CSP if archive else EMAIL_CSP) if email_html else PAGE_CSP
                    if scope["path"] in _DOCS_PATHS:
                        csp = DOCS_CSP
                    headers.setdefault("Content-Security-Policy", csp)
            await send(message)

        await self.app(scope, receive, send_with_headers)
