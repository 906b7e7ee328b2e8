"""Request limits checked before any handler sees a body: size (while streaming) and bad bytes.

A pure ASGI middleware: a body over its path's limit is answered `413` as soon as the limit is
passed, without reading the rest, so a 400 MB upload never costs 400 MB of memory. JSON and
form bodies (small, and read whole by their handlers anyway) are also checked for NUL
characters and for nesting deeper than any real request needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KB = 1024
MB = 1024 * KB
# Public forms and JSON are tiny; editors' issues carry Markdown; imports are whole files.
DEFAULT_LIMIT = 64 * KB
PATH_LIMITS: tuple[tuple[str, int], ...] = (
    ("/subscribers/import", 50 * MB),
    ("/suppressions/import", 50 * MB),
    ("/webhooks/bounce", 10 * MB),
    # Providers batch their events: SendGrid sends up to thousands in one request.
    ("/webhooks/sendgrid", 10 * MB),
    ("/webhooks/ses", 1 * MB),
    ("/webhooks/postmark", 1 * MB),
    ("/webhooks/mailgun", 1 * MB),
    # Images: MEDIA_MAX_BYTES (10 MB by default) refuses first, with its own message.
    ("/media", 10 * MB + 64 * KB),
    ("/editor/media", 10 * MB + 64 * KB),
    ("/issues", 5 * MB),
    ("/editor", 5 * MB),
)
MAX_JSON_DEPTH = 32
NUL_MESSAGE = "A request may not contain NUL characters."
DEPTH_MESSAGE = f"The JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels)."

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# \u0000 not itself escaped (an even number of backslashes before it).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")

Responder = Callable[[Request, int, str, str], Response]


def limit_for(path: str) -> int:
    """Return the largest body, in bytes, accepted on `path`."""
    for prefix, limit in PATH_LIMITS:
        if path == prefix or path.startswith(prefix + "/"):
            return limit
    return DEFAULT_LIMIT


def too_large(limit: int) -> str:
    """Return the sentence a 413 carries."""
    size = f"{limit // MB} MB" if limit >= MB else f"{limit // KB} KB"
    return f"The request body is too large; at most {size} is accepted here."


def json_depth(body: bytes) -> int:
    """Return how deeply arrays and objects nest in a JSON text (strings ignored)."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for ch in brackets:
        depth += 1 if ch in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _has_nul(body: bytes, kind: str) -> bool:
    if b"\x00" in body:
        return True
    if kind == "json":
        return _JSON_NUL.search(body) is not None
    return b"%00" in body


def _body_kind(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            ctype = value.split(b";")[0].strip().lower()
            if ctype == b"application/json" or ctype.endswith(b"+json"):
                return "json"
            if ctype == b"application/x-www-form-urlencoded":
                return "form"
            return "other"
    return "other"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class _TooLarge(Exception):
    pass


class RequestLimits:
    """Refuse over-long bodies while they stream in, and NUL bytes or deep JSON before parsing."""

    def __init__(self, app: ASGIApp, respond: Responder) -> None:
        self.app = app
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check one request, then hand it on (with its body replayed when it was read here)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            await self._answer(scope, receive, send, 400, "invalid", NUL_MESSAGE)
            return
        limit = limit_for(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._answer(scope, receive, send, 413, "too_large", too_large(limit))
            return
        kind = _body_kind(scope)
        if kind == "other":
            await self.app(scope, _counting(receive, limit), send)
            return
        try:
            body = await _read_body(receive, limit)
        except _TooLarge:
            await self._answer(scope, receive, send, 413, "too_large", too_large(limit))
            return
        if _has_nul(body, kind):
            await self._answer(scope, receive, send, 400, "invalid", NUL_MESSAGE)
            return
        if kind == "json" and json_depth(body) > MAX_JSON_DEPTH:
            await self._answer(scope, receive, send, 400, "invalid", DEPTH_MESSAGE)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
    ) -> None:
        response = self.respond(Request(scope, receive), status, code, message)
        if status == 413:
            # The rest of the body is never read: tell the client not to reuse the connection.
            response.headers["Connection"] = "close"
        await response(scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> bytes:
    """Return the whole body, or raise _TooLarge as soon as it passes `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # then disconnects, as the server reports them

    return replay


def _counting(receive: Receive, limit: int) -> Receive:
    size = 0

    async def counted() -> Message:
        nonlocal size
        message: Any = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                # Raised inside the app's body read: its error handler answers 413.
                raise HTTPException(413, too_large(limit))
        return message

    return counted
