"""SMTP transactions on a session aiosmtplib set up, pipelined (RFC 2920) when the relay offers it.

aiosmtplib opens the session (greeting, EHLO, STARTTLS, AUTH) and we keep it for that. It reads
exactly one reply per command written, though, so it cannot pipeline: replies that arrive
together are lost. Once the session is ready, a Wire takes the transport over. Each write
first registers the replies it expects (`expect`), and replies fill them strictly in order,
so MAIL, RCPT and DATA go out in one write, and the next message's MAIL, RCPT and DATA may
follow a message's content before its reply is in (RFC 2920 3.1: message content may start a
group). On a fast relay round trips are most of the cost of a message; this leaves about one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import NamedTuple, cast

import aiosmtplib

MAX_LINE = 8192  # RFC 5321 allows 512; be lenient, but never buffer without bound
MAX_LINES = 64
# How long a reply found late is given for the loop to poll its sockets once more before the
# timeout is judged (see _ReplyProtocol._check): any positive delay puts one poll in between.
OVERDUE_GRACE = 0.01


class Reply(NamedTuple):
    """One SMTP reply: its code and its text (continuation lines joined by newlines)."""

    # A NamedTuple, not a frozen dataclass: four per message, and a frozen dataclass's
    # __init__ sets each field through object.__setattr__ (about three times the cost).
    code: int
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.message}".strip()


class WireError(Exception):
    """The connection broke, timed out or spoke nonsense; it is closed.

    `replies`: those of the awaited group that did come before the end (a relay answers 421
    to MAIL and hangs up, as RFC 5321 says it must: that 421 is its answer, not silence).
    """

    replies: tuple[Reply, ...] = ()


class ReplyTimeout(WireError):
    """No reply came within the timeout."""


class Disconnected(WireError):
    """The relay hung up, or sent something that is not an SMTP reply."""


class _Expected:
    """Replies reserved by one write: filled in order, handed out together."""

    __slots__ = ("count", "deadline", "future", "replies")

    def __init__(
        self, future: asyncio.Future[list[Reply]], count: int, deadline: float | None
    ) -> None:
        self.future = future
        self.count = count
        self.deadline = deadline  # loop time by which its last reply must be in, or None
        self.replies: list[Reply] = []


class _ReplyProtocol(asyncio.Protocol):
    """Splits what the relay sends into complete replies and hands them out in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.replies: deque[Reply] = deque()  # arrived before anyone expected them
        # Expected replies, one entry per write, in the order the commands were written.
        self.pending: deque[_Expected] = deque()
        self.lost: WireError | None = None
        self._buffer = bytearray()
        self._lines: list[bytes] = []
        self.gone = asyncio.Event()  # set once the socket is really closed
        self.transport: asyncio.BaseTransport | None = None
        # One timer for every expected reply, set for the oldest deadline and moved on when
        # it fires early: arming and cancelling a timer per message cost more than the rest
        # of the bookkeeping (deadlines only grow, since replies are reserved in order).
        self._timer: asyncio.TimerHandle | None = None
        self._timeout = 0.0
        self._overdue: _Expected | None = None  # found late once; judged after one more poll

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            self._split()
        except Disconnected as exc:
            self._fail(exc)

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
                self._lines = []
                self._deliver(Reply(int(code), text))
        if len(self._buffer) > MAX_LINE:
            raise Disconnected("reply line too long")

    def _deliver(self, reply: Reply) -> None:
        if not self.pending:
            self.replies.append(reply)
            return
        head = self.pending[0]
        head.replies.append(reply)
        if len(head.replies) == head.count:
            self.pending.popleft()
            if not head.future.done():
                head.future.set_result(head.replies)

    def expect(self, count: int, timeout: float | None) -> asyncio.Future[list[Reply]]:
        """Return a future for the next `count` replies not yet spoken for, as one list.

        The last of them must come within `timeout` (replies come in order: if it is in
        time, so were the others).
        """
        future: asyncio.Future[list[Reply]] = self.loop.create_future()
        if self.lost is not None:
            _settle(future, Disconnected(str(self.lost)))
            return future
        entry = _Expected(future, count, None)
        if not self.pending:
            while self.replies and len(entry.replies) < count:
                entry.replies.append(self.replies.popleft())
            if len(entry.replies) == count:
                future.set_result(entry.replies)
                return future
        if timeout is not None:
            entry.deadline = self.loop.time() + timeout
            self._timeout = timeout
            if self._timer is None:
                self._timer = self.loop.call_at(entry.deadline, self._check)
        self.pending.append(entry)
        return future

    def _check(self) -> None:
        """Fail everything if the oldest timed reply is late; else wait for its deadline.

        A reply found late is judged once more after the loop has polled its sockets: after a
        stall (a GC pause, a descheduled VM) uvloop runs its due timers before it reads what
        arrived meanwhile, and a reply already in the socket would be taken for none. Then
        a message the relay accepted would turn `unknown`, and a resend would double it.
        """
        self._timer = None
        now = self.loop.time()
        for entry in self.pending:
            if entry.deadline is None:
                continue
            if entry.deadline > now:
                self._timer = self.loop.call_at(entry.deadline, self._check)
                return
            if self._overdue is not entry:
                self._overdue = entry
                self._timer = self.loop.call_at(now + OVERDUE_GRACE, self._check)
                return
            # Replies come in order: one late means every later one is too.
            self._fail(ReplyTimeout(f"no reply within {self._timeout:g} s"))
            if self.transport is not None:
                self.transport.close()  # a late reply must never be taken for a later command's
            return

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(Disconnected(f"connection lost: {exc}" if exc else "connection closed"))
        self.gone.set()

    def _fail(self, exc: WireError) -> None:
        if self.lost is None:
            self.lost = exc
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self.pending:
            entry = self.pending.popleft()
            error = type(exc)(str(exc))
            error.replies = tuple(entry.replies)
            _settle(entry.future, error)


def _settle(future: asyncio.Future[list[Reply]], exc: WireError) -> None:
    if not future.done():
        future.set_exception(exc)
        future.exception()  # retrieved: nobody may be waiting for it any more


class Wire:
    """An SMTP session after its greeting: write commands, read their replies in order."""

    def __init__(self, smtp: aiosmtplib.SMTP, timeout: float) -> None:
        transport = smtp.transport
        if transport is None or transport.is_closing():
            raise Disconnected("the session closed while it was being set up")
        # uvloop's transports do not subclass asyncio's, so no isinstance check.
        self._transport = cast(asyncio.Transport, transport)
        self._protocol = _ReplyProtocol(asyncio.get_running_loop())
        self._protocol.transport = transport
        transport.set_protocol(self._protocol)  # aiosmtplib's client is not used again
        self.timeout = timeout
        self.pipelining = smtp.supports_extension("pipelining")

    @property
    def is_open(self) -> bool:
        """Tell whether the connection can still carry a transaction."""
        return self._protocol.lost is None and not self._transport.is_closing()

    def write(self, data: bytes) -> None:
        """Queue bytes on the socket; raise Disconnected (nothing sent) if it is closed.

        No flow control: at most two messages per connection are in flight, and a relay that
        stops reading never answers either, so the reply timeout bounds the wait.
        """
        if not self.is_open:
            raise Disconnected(str(self._protocol.lost or "connection closed"))
        self._transport.write(data)

    def expect(self, count: int = 1) -> asyncio.Future[list[Reply]]:
        """Reserve the next `count` replies, before writing the commands they answer.

        One future for the whole group (a write's replies are awaited together); only the
        last reply is timed: replies come in order, so if it is in time, so were the others.
        """
        return self._protocol.expect(count, self.timeout)

    async def wait(self, future: asyncio.Future[list[Reply]]) -> list[Reply]:
        """Return reserved replies; raise ReplyTimeout or Disconnected (the wire is then closed)."""
        try:
            return await future
        except WireError:
            self.close()
            raise

    async def reply(self) -> Reply:
        """Return the next reply; raise ReplyTimeout or Disconnected (the wire is then closed)."""
        return (await self.wait(self.expect(1)))[0]

    async def command(self, line: bytes) -> Reply:
        """Send one command line and return its reply."""
        future = self.expect(1)
        self.write(line + b"\r\n")
        return (await self.wait(future))[0]

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
