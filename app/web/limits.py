"""Request limits checked before any handler sees a body: size (while streaming) and bad bytes.

A pure ASGI middleware: a body over its path's limit is answered `413` as soon as the limit is
passed, without reading the rest, so a 400 MB upload never costs 400 MB of memory. JSON and
form bodies (read whole by their handlers anyway) are also checked for NUL characters, and
JSON for nesting and for more values than any real request needs. Everything here runs on the
event loop, so every check is linear in the body and done chunk by chunk as it arrives
(app.web.json_scan): one hostile body must never hold the loop (issue 17).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.json_scan import JsonShape, has_escaped_nul, json_depth

__all__ = ["RequestLimits", "json_depth", "limit_for", "too_large"]

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
    ("/editor/login", DEFAULT_LIMIT),  # before any sign-in: a stranger's body stays small
    ("/editor", 5 * MB),
)
NUL_MESSAGE = "A request may not contain NUL characters."

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


def _has_nul(body: bytes, kind: str) -> bool:
    if b"\x00" in body:
        return True
    if kind == "json":
        return has_escaped_nul(body)
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


class _BadShape(Exception):
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
        shape = JsonShape() if kind == "json" else None
        try:
            body = await _read_body(receive, limit, shape)
        except _TooLarge:
            await self._answer(scope, receive, send, 413, "too_large", too_large(limit))
            return
        except _BadShape as exc:
            await self._answer(scope, receive, send, 400, "invalid", str(exc), close=True)
            return
        if _has_nul(body, kind):
            await self._answer(scope, receive, send, 400, "invalid", NUL_MESSAGE)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        code: str,
        message: str,
        *,
        close: bool = False,
    ) -> None:
        response = self.respond(Request(scope, receive), status, code, message)
        if status == 413 or close:
            # The rest of the body is never read: tell the client not to reuse the connection.
            response.headers["Connection"] = "close"
        await response(scope, receive, send)


async def _read_body(receive: Receive, limit: int, shape: JsonShape | None) -> bytes:
    """Return the whole body; raise _TooLarge or _BadShape as soon as it is clear it fails."""
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
        if shape is not None and (problem := shape.feed(chunk)) is not None:
            raise _BadShape(problem)
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
