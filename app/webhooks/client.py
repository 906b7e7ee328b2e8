"""POST one signed event to one checked address: asyncio streams and h11, no redirects."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ssl
from dataclasses import dataclass

import h11

from app.errors import InvalidInput
from app.webhooks.safety import Target, check_addresses, parse_target, resolve

SIGNATURE_HEADER = "X-MorningPost-Signature"
USER_AGENT = "MorningPost-Webhooks/1"


@dataclass(frozen=True)
class PostResult:
    """What one POST gave: a status code, or an error; `refused` when never attempted."""

    status: int | None
    error: str | None = None
    refused: bool = False

    @property
    def ok(self) -> bool:
        """Tell whether the endpoint answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


def signature(secret: str, body: bytes) -> str:
    """Return the X-MorningPost-Signature value: sha256=<hex HMAC-SHA256 of the body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def post_event(
    url: str,
    body: bytes,
    secret: str,
    event: str,
    *,
    timeout: float,
    allow_private: bool,
) -> PostResult:
    """POST `body` to `url`; every failure becomes a result, nothing raises."""
    try:
        target = parse_target(url)
        async with asyncio.timeout(timeout):  # a stuck resolver counts against the POST too
            addresses = await asyncio.to_thread(resolve, target)
        addresses = check_addresses(target.host, addresses, allow_private)
    except InvalidInput as exc:
        return PostResult(None, exc.message[:500], refused=True)
    except TimeoutError:
        return PostResult(None, f"no DNS answer within {timeout:g} s")
    headers = [
        ("Host", target.host_header),
        ("User-Agent", USER_AGENT),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("X-MorningPost-Event", event),
        (SIGNATURE_HEADER, signature(secret, body)),
        ("Connection", "close"),
    ]
    try:
        async with asyncio.timeout(timeout):
            return await _exchange(target.scheme, addresses[0], target, headers, body)
    except TimeoutError:
        return PostResult(None, f"no answer within {timeout:g} s")
    except (OSError, ssl.SSLError, h11.ProtocolError, ValueError) as exc:
        # ValueError: h11 refusing what it was given to send (UnicodeEncodeError among them).
        return PostResult(None, f"{type(exc).__name__}: {exc}"[:500])


async def _exchange(
    scheme: str,
    address: str,
    target: Target,
    headers: list[tuple[str, str]],
    body: bytes,
) -> PostResult:
    host, path, port = target.host, target.path, target.port
    tls = ssl.create_default_context() if scheme == "https" else None
    # Connect to the checked address; the name only goes into SNI and the Host header.
    reader, writer = await asyncio.open_connection(
        address, port, ssl=tls, server_hostname=host if tls else None
    )
    try:
        conn = h11.Connection(our_role=h11.CLIENT)
        writer.write(conn.send(h11.Request(method="POST", target=path, headers=headers)) or b"")
        writer.write(conn.send(h11.Data(data=body)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            if isinstance(event, h11.Response):
                # A redirect is not followed: it is a non-2xx answer like any other.
                return PostResult(event.status_code)
            if isinstance(event, h11.ConnectionClosed):
                return PostResult(None, "connection closed before a response")
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
