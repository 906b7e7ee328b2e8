"""GET one checked URL: the address that was checked is the one connected to, no redirects.

For outbound fetches other than webhook POSTs (an SNS signing certificate, an SNS
subscription confirmation): the same address rules as webhooks, a size cap and one timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field

import h11

from app.errors import InvalidInput
from app.webhooks.safety import WEBHOOK_PRIVATE_SETTING, check_addresses, parse_target, resolve

USER_AGENT = "MorningPost/1"


class FetchError(Exception):
    """The URL was refused, unreachable, too slow or too large; the message says which."""


@dataclass(frozen=True)
class Fetched:
    """A response: its status, its headers (names lower-case) and (at most the cap of) its body."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


async def fetch(
    url: str,
    *,
    timeout: float,
    allow_private: bool,
    max_bytes: int,
    https_only: bool = False,
    headers: dict[str, str] | None = None,
    private_setting: str = WEBHOOK_PRIVATE_SETTING,
) -> Fetched:
    """GET `url` (redirects are answers, not followed) and return the response, or FetchError.

    private_setting: the setting a refused private address names (the caller's own).
    """
    try:
        target = parse_target(url)
    except InvalidInput as exc:
        raise FetchError(exc.message) from None
    if https_only and target.scheme != "https":
        raise FetchError("only https:// URLs are fetched")
    try:
        async with asyncio.timeout(timeout):
            addresses = await asyncio.to_thread(resolve, target)
            address = check_addresses(target.host, addresses, allow_private, private_setting)[0]
            tls = ssl.create_default_context() if target.scheme == "https" else None
            reader, writer = await asyncio.open_connection(
                address, target.port, ssl=tls, server_hostname=target.host if tls else None
            )
            try:
                extra = list((headers or {}).items())
                return await _get(reader, writer, target.path, target.host_header, max_bytes, extra)
            finally:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
    except InvalidInput as exc:
        raise FetchError(exc.message) from None
    except TimeoutError:
        raise FetchError(f"no answer within {timeout:g} s") from None
    except (OSError, ssl.SSLError, h11.ProtocolError, ValueError) as exc:
        raise FetchError(f"{type(exc).__name__}: {exc}"[:300]) from None


async def _get(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    path: str,
    host: str,
    max_bytes: int,
    extra: list[tuple[str, str]],
) -> Fetched:
    conn = h11.Connection(our_role=h11.CLIENT)
    # Header values go back out byte for byte as they came in (an ETag is read as latin-1
    # below): as text, h11 would encode them as ASCII and fail on the first byte over 127.
    headers = [
        (b"Host", host.encode("ascii")),
        (b"User-Agent", USER_AGENT.encode("ascii")),
        (b"Connection", b"close"),
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in extra),
    ]
    writer.write(conn.send(h11.Request(method="GET", target=path, headers=headers)) or b"")
    writer.write(conn.send(h11.EndOfMessage()) or b"")
    await writer.drain()
    status: int | None = None
    got: dict[str, str] = {}
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
            got = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > max_bytes:
                raise FetchError(f"the response is larger than {max_bytes} bytes")
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed) and status is not None:
            return Fetched(status, bytes(body), got)
        elif isinstance(event, h11.ConnectionClosed):
            raise FetchError("the connection closed before a response")
