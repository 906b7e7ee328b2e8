"""SMTP transactions on a session aiosmtplib set up, pipelined (RFC 2920) when the relay offers it.

aiosmtplib opens the session (greeting, EHLO, STARTTLS, AUTH) and we keep it for that. It reads
exactly one reply per command written, though, so it cannot pipeline: replies that arrive
together are lost. Once the session is ready, a Wire takes the transport over and reads every
reply in order, which lets MAIL, RCPT and DATA go out in one write — two round trips per
message instead of four, which is most of the cost of a message on a fast relay.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import cast

import aiosmtplib

MAX_LINE = 8192  # RFC 5321 allows 512; be lenient, but never buffer without bound
MAX_LINES = 64


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: its code and its text (continuation lines joined by newlines)."""

    code: int
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.message}".strip()


class WireError(Exception):
    """The connection broke, timed out or spoke nonsense; it is closed."""


class ReplyTimeout(WireError):
    """No reply came within the timeout."""


class Disconnected(WireError):
    """The relay hung up, or sent something that is not an SMTP reply."""


class _ReplyProtocol(asyncio.Protocol):
    """Buffers what the relay sends and splits it into complete replies, in order."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.waiter: asyncio.Future[bool] | None = None  # True: woken; False: timed out
        self.lost: WireError | None = None
        self._buffer = bytearray()
        self._lines: list[bytes] = []
        self.gone = asyncio.Event()  # set once the socket is really closed

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            self._split()
        except Disconnected as exc:
            self._fail(exc)
            return
        if self.replies:
            self._wake()

    def _split(self) -> None:
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            code = line[:3]
            if len(line) > MAX_LINE or not code.isdigit() or len(self._lines) > MAX_LINES:
                raise Disconnected(f"not an SMTP reply: {line[:80]!r}")
            self._lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":  # "250 text", "250" alone: the reply's last line
                text = b"\n".join(self._lines).decode("utf-8", "replace")
                self.replies.append(Reply(int(code), text))
                self._lines = []
        if len(self._buffer) > MAX_LINE:
            raise Disconnected("reply line too long")

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(Disconnected(f"connection lost: {exc}" if exc else "connection closed"))
        self.gone.set()

    def _fail(self, exc: WireError) -> None:
        if self.lost is None:
            self.lost = exc
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(True)


class Wire:
    """An SMTP session after its greeting: write commands, read their replies in order."""

    def __init__(self, smtp: aiosmtplib.SMTP, timeout: float) -> None:
        transport = smtp.transport
        if transport is None or transport.is_closing():
            raise Disconnected("the session closed while it was being set up")
        # uvloop's transports do not subclass asyncio's, so no isinstance check.
        self._transport = cast(asyncio.Transport, transport)
        self._protocol = _ReplyProtocol()
        transport.set_protocol(self._protocol)  # aiosmtplib's client is not used again
        self.timeout = timeout
        self.pipelining = smtp.supports_extension("pipelining")

    @property
    def is_open(self) -> bool:
        """Tell whether the connection can still carry a transaction."""
        return self._protocol.lost is None and not self._transport.is_closing()

    def write(self, data: bytes) -> None:
        """Queue bytes on the socket; raise Disconnected (nothing sent) if it is closed.

        No flow control: one message per connection is in flight, and a relay that stops
        reading never answers either, so reply()'s timeout bounds the wait.
        """
        if not self.is_open:
            raise Disconnected(str(self._protocol.lost or "connection closed"))
        self._transport.write(data)

    async def reply(self) -> Reply:
        """Return the next reply; raise ReplyTimeout or Disconnected (the wire is then closed)."""
        protocol = self._protocol
        if protocol.replies:
            return protocol.replies.popleft()
        loop = asyncio.get_running_loop()
        timer = None
        try:
            while not protocol.replies:
                if protocol.lost is not None:
                    raise Disconnected(str(protocol.lost))  # a fresh one: no traceback pile-up
                protocol.waiter = loop.create_future()
                # A plain timer, not asyncio.wait_for: this runs twice per message.
                timer = loop.call_later(self.timeout, _expire, protocol.waiter)
                if not await protocol.waiter:
                    raise ReplyTimeout(f"no reply within {self.timeout:g} s")
                timer.cancel()
        except WireError:
            self.close()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            protocol.waiter = None
        return protocol.replies.popleft()

    async def command(self, line: bytes) -> Reply:
        """Send one command line and return its reply."""
        self.write(line + b"\r\n")
        return await self.reply()

    def close(self) -> None:
        """Drop the connection without a goodbye."""
        self._transport.close()

    async def quit(self) -> None:
        """Say QUIT and close, whatever the answer; return once the socket is closed."""
        try:
            if self.is_open:
                await self.command(b"QUIT")
        except WireError:
            pass
        finally:
            self.close()
        # close() finishes on a later loop turn: wait, so a loop that ends next leaks nothing.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._protocol.gone.wait(), 1.0)


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
