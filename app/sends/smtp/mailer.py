"""Mailers: a pool of reused SMTP connections (aiosmtplib), or a capture that writes .eml files.

aiosmtplib sets each session up; the transactions run on a Wire (smtp_wire), pipelined when the
relay offers it, so a failure can be classified by *when* it happened: anything before the body
was handed over is safe to retry; once the body was written, a timeout or a hang-up means the
relay may have accepted it.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
from aiosmtplib import SMTPException, SMTPResponseException, SMTPTimeoutError
from sqlalchemy.engine import Engine

from app.config import Settings
from app.sends.policy import Outcome, is_hard_bounce
from app.sends.smtp.wire import Reply, ReplyTimeout, Wire, WireError

if TYPE_CHECKING:  # relays.py imports this module: the type only, for the factory
    from app.sends.smtp.relays import RelayObserver

__all__ = [
    "CaptureMailer",
    "HandOver",
    "Mailer",
    "MailerConnection",
    "Outcome",
    "SMTPMailer",
    "SendResult",
]


class SendResult(NamedTuple):
    """The outcome of one send, the reply that decided it, and whether to suppress the address."""

    # A NamedTuple, not a frozen dataclass: one per message, and a frozen dataclass's
    # __init__ sets each of its six fields through object.__setattr__.
    outcome: Outcome
    reply: str
    suppress: bool = False
    # Set when the relay itself is unusable (refused, no STARTTLS, login or TLS refused,
    # silent): a sentence an editor can act on. Such failures are never the reader's.
    alert: str | None = None
    # The row was never handed over (its gate said no): no content left, give it back uncounted.
    withheld: bool = False
    # No byte of the content left (connect, MAIL, RCPT or DATA refused or broken): another
    # relay may take the message without any risk of a second copy.
    before_data: bool = False


class HandOver:
    """A row's leave to send its content, decided by a commit; the envelope may go before it."""

    def __init__(self, on_wait: Callable[[], None]) -> None:
        self.decided: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._on_wait = on_wait  # told when a connection stands waiting for the decision
        self.waited = False

    def refused(self) -> bool:
        """Tell whether it was already decided that the content may not go."""
        return self.decided.done() and not self.decided.result()

    async def wait(self) -> bool:
        """Return True once the content may go, False if it never may."""
        if not self.decided.done() and not self.waited:
            self.waited = True
            self._on_wait()
        return await self.decided


class MailerConnection(Protocol):
    """One connection to the relay; two sends may share it (the second's envelope pipelined)."""

    async def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        *,
        stuffed: bool = False,
        gate: HandOver | None = None,
        relay: str | None = None,
    ) -> SendResult:
        """Send `data` (CRLF) to one recipient; never raises for SMTP trouble.

        stuffed=True: `data` is already dot-stuffed and ends with CRLF.CRLF
        (PreparedMessage.fill_wire), so it goes on the wire as it is.
        gate: resolved True once the row is handed over (committed), False if it may not be
        sent; no byte of the content is written before it says True.
        relay: the only relay this message may go through (a newsletter's choice); a single
        connection has one relay and ignores it, the relay pool keeps to it.
        """
        ...


class Mailer(Protocol):
    """A pool of connections to one relay."""

    def connection(self) -> AbstractAsyncContextManager[MailerConnection]:
        """Borrow a connection (reused across messages and batches)."""
        ...

    async def aclose(self) -> None:
        """Close idle connections."""
        ...


def _reply(code: int, message: str) -> str:
    return f"{code} {message}".strip()


def _by_code(code: int, message: str, *, may_suppress: bool) -> SendResult:
    """Classify a refusal that happened before or at the final reply (nothing ambiguous)."""
    reply = _reply(code, message)
    if 400 <= code < 500:
        return SendResult(Outcome.retry, reply)
    if 500 <= code < 600:
        return SendResult(Outcome.failed, reply, may_suppress and is_hard_bounce(message))
    return SendResult(Outcome.retry, f"unexpected reply {reply}")


_PLAIN_PATH = re.compile(r"[!-;=?-~]+@[!-;=?-~]+")  # printable ASCII, no < > or spaces


def _path(address: str) -> bytes | None:
    """Return <address> for MAIL/RCPT when it is a plain ASCII addr-spec, else None.

    Addresses are validated and normalised when stored (ASCII only, no quoted local parts),
    so None means a row that should never have been stored; it fails rather than guessing.
    """
    if not _PLAIN_PATH.fullmatch(address):
        return None
    return b"<" + address.encode("ascii") + b">"


def dot_stuff(data: bytes) -> bytes:
    """Escape leading dots and terminate the DATA stream (bytes.replace is C, no regex)."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


class SMTPConnection:
    """One relay session, set up by aiosmtplib, reconnected after a hang-up."""

    def __init__(self, mailer: SMTPMailer) -> None:
        self._mailer = mailer
        self._wire: Wire | None = None
        self._dirty = False  # a refused transaction left state on the server: RSET first
        self._turn = asyncio.Lock()  # from a message's MAIL to the end of its content
        self._queued: deque[_Envelope] = deque()  # sends waiting for the turn, oldest first
        self._sender: tuple[str, bytes | None] = ("", None)  # the last sender, as a path

    @property
    def usable(self) -> bool:
        """Tell whether the connection is open."""
        return self._wire is not None and self._wire.is_open

    async def _ready(self) -> Wire:
        wire = self._wire
        if wire is not None and wire.is_open and self._dirty:
            try:
                if (await wire.command(b"RSET")).code == 250:
                    self._dirty = False
                else:
                    wire.close()
            except WireError:
                pass  # reply() closed it
        if wire is None or not wire.is_open:
            smtp = self._mailer.new_client()
            try:
                await smtp.connect()  # greeting, EHLO, STARTTLS and AUTH as the URL asks
                if smtp.is_ehlo_or_helo_needed:
                    await smtp.ehlo()
                wire = self._wire = Wire(smtp, self._mailer.timeout)
            except BaseException:
                smtp.close()  # aiosmtplib leaves the socket open when STARTTLS or AUTH fails
                raise
            self._dirty = False
        return wire

    async def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        *,
        stuffed: bool = False,
        gate: HandOver | None = None,
        relay: str | None = None,
    ) -> SendResult:
        """Run one SMTP transaction and classify its outcome.

        Two sends may share a connection. When the next one is already waiting as a message's
        content is written, its MAIL, RCPT and DATA go out in the same write, before that
        message's reply (RFC 2920 3.1: content may start a command group), so the relay never
        waits for us. Only in the same write: an envelope sent on its own while a reply is
        outstanding meets the relay's Nagle delay (40 ms a message). The turn lock keeps each
        envelope and its content together; replies come back in the order written.
        """
        # The sender is the same for every message (unless VERP): check and encode it once.
        if sender != self._sender[0]:
            self._sender = (sender, _path(sender))
        mail, rcpt = self._sender[1], _path(recipient)
        if mail is None or rcpt is None:
            bad = sender if mail is None else recipient
            return SendResult(Outcome.failed, f"address cannot be sent as plain ASCII: {bad!r}")
        env = _Envelope(b"MAIL FROM:" + mail, b"RCPT TO:" + rcpt, gate=gate)
        self._queued.append(env)
        try:
            async with self._turn:
                outcome = await self._transaction(env, data if stuffed else dot_stuff(data))
        except BaseException:
            # Cancelled mid-transaction: the relay may sit in DATA, where the next MAIL would
            # be taken for content. Only a hang-up ends that safely.
            if env.wire is not None:
                env.wire.close()
            raise
        finally:
            # Still queued only if cancelled before its turn. (Not remove() and ValueError:
            # deque formats the missing item's repr into that error, on every message.)
            if env in self._queued:
                self._queued.remove(env)
        if isinstance(outcome, SendResult):
            return outcome
        # The next envelope rode along with this content: its sender has the turn already.
        return await self._final(*outcome)

    async def _transaction(
        self, env: _Envelope, content: bytes
    ) -> SendResult | tuple[Wire, asyncio.Future[list[Reply]]]:
        """Run one transaction holding the turn, to its reply unless the next one rode along.

        Returns the result, or the wire and the reply to wait for once the turn is released.
        """
        wire = env.wire  # set when the envelope rode along with the previous content
        if wire is None:  # not carried by the previous message's write: send it now
            self._queued.remove(env)
            if env.gate is not None and env.gate.refused():
                return _WITHHELD  # refused before anything went out
            try:
                wire = env.wire = await self._ready()
            except SMTPResponseException as exc:
                # Greeting, STARTTLS or AUTH refused: the relay's problem, never the recipient's.
                reply = f"connect: {_reply(exc.code, exc.message)}"
                alert = self._mailer.problem(exc)
                return SendResult(Outcome.retry, reply, alert=alert, before_data=True)
            except (SMTPException, WireError, OSError) as exc:
                reply = f"connect: {exc}"
                alert = self._mailer.problem(exc)
                return SendResult(Outcome.retry, reply, alert=alert, before_data=True)
        try:
            refused = await self._envelope(wire, env)
        except (WireError, OSError) as exc:
            # The content was not sent yet: whatever broke, nothing can have been accepted.
            wire.close()
            return SendResult(Outcome.retry, f"before DATA: {exc}", before_data=True)
        if refused is not None:
            self._dirty = True
            return refused._replace(before_data=True)
        if env.gate is not None and not await env.gate.wait():
            # DATA is open and this row may not be sent: only a hang-up closes DATA without
            # delivering something (a lone "." would send an empty message).
            wire.close()
            return _WITHHELD
        final = wire.expect(1)
        carried = self._queued.popleft() if wire.pipelining and self._queued else None
        if carried is not None:
            carried.replies, carried.wire = wire.expect(len(_EXPECTED)), wire
            content += carried.commands()
        try:
            wire.write(content)  # raises (nothing sent) if the socket is already closing
        except (WireError, OSError) as exc:
            wire.close()
            return SendResult(Outcome.retry, f"disconnected after 354: {exc}", before_data=True)
        if carried is None:
            # Nothing rode along: the next envelope must wait for this reply (see send()).
            return await self._final(wire, final)
        return wire, final

    async def _envelope(self, wire: Wire, env: _Envelope) -> SendResult | None:
        """Send MAIL, RCPT and DATA (unless already sent); return the refusal, or None on 354."""
        if env.replies is not None:
            replies = await wire.wait(env.replies)
        elif wire.pipelining:
            # One write, three replies (RFC 2920: DATA ends the group), awaited together.
            env.replies = wire.expect(len(_EXPECTED))
            wire.write(env.commands())
            replies = await wire.wait(env.replies)
        else:
            replies = []
            for command, ok in zip(env.lines(), _EXPECTED, strict=True):
                replies.append(reply := await wire.command(command))
                if reply.code not in ok:
                    break
        for reply, ok, may_suppress in zip(replies, _EXPECTED, (False, True, False), strict=False):
            if reply.code not in ok:
                if replies[-1].code == 354:
                    # DATA was opened although MAIL or RCPT failed: close it empty (RFC 2920).
                    await wire.command(b".")
                return _by_code(reply.code, reply.message, may_suppress=may_suppress)
        return None

    async def _final(self, wire: Wire, final: asyncio.Future[list[Reply]]) -> SendResult:
        """Wait for the reply to a message's content: once it was written, silence is unknown."""
        try:
            (reply,) = await wire.wait(final)
        except ReplyTimeout:
            return SendResult(Outcome.unknown, "timed out waiting for the reply to the message")
        except (WireError, OSError) as exc:
            return SendResult(Outcome.unknown, f"disconnected after the message was sent: {exc}")
        if reply.code == 250:
            return SendResult(Outcome.sent, str(reply))
        return _by_code(reply.code, reply.message, may_suppress=True)

    async def aclose(self) -> None:
        """Say QUIT politely; close regardless."""
        wire, self._wire = self._wire, None
        if wire is not None:
            await wire.quit()


_EXPECTED: tuple[tuple[int, ...], ...] = ((250,), (250, 251), (354,))  # MAIL, RCPT, DATA
_WITHHELD = SendResult(
    Outcome.retry, "not sent: the row was not handed over", withheld=True, before_data=True
)


@dataclass(eq=False)
class _Envelope:
    """One transaction's MAIL and RCPT, and where their replies will come once written."""

    mail: bytes
    rcpt: bytes
    gate: HandOver | None = None
    wire: Wire | None = None
    replies: asyncio.Future[list[Reply]] | None = None  # to MAIL, RCPT, DATA, once written

    def lines(self) -> tuple[bytes, bytes, bytes]:
        """Return the three command lines, without line ends."""
        return (self.mail, self.rcpt, b"DATA")

    def commands(self) -> bytes:
        """Return the three commands as one pipelined group."""
        return b"\r\n".join(self.lines()) + b"\r\n"


class SMTPMailer:
    """Connections to one relay, kept open and handed out one per sending task."""

    def __init__(self, url: str, *, timeout: float, max_idle: int = 4) -> None:
        parts = urlsplit(url)
        self.hostname = parts.hostname or "localhost"
        self.port = parts.port
        self.scheme = parts.scheme
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self._idle: list[SMTPConnection] = []
        self._max_idle = max_idle

    def problem(self, exc: BaseException) -> str:
        """Say in one sentence why the relay could not be used, and what to check."""
        where = f"{self.hostname}:{self.port or ('465' if self.scheme == 'smtps' else '25')}"
        text = str(exc).strip() or type(exc).__name__
        lowered = text.lower()
        if isinstance(exc, SMTPResponseException) and exc.code in (454, 530, 534, 535, 538):
            return (
                f"The relay {where} refused the login ({_reply(exc.code, exc.message)}): "
                "check the user name and password in MORNINGPOST_SMTP_URL."
            )[:400]
        if "starttls" in lowered:
            return (
                f"The relay {where} does not offer STARTTLS, which smtp:// requires: use "
                "smtps:// for implicit TLS, or smtp+plain:// only for a relay on this machine."
            )
        if isinstance(exc, SMTPTimeoutError | TimeoutError) or "timed out" in lowered:
            return f"The relay {where} did not answer within {self.timeout:g} s."
        if isinstance(exc, ssl.SSLError) or "ssl" in lowered or "certificate" in lowered:
            return f"TLS with the relay {where} failed: {text}"[:400]
        cause = exc.__cause__ or exc.__context__
        refused = isinstance(exc, ConnectionRefusedError) or isinstance(
            cause, ConnectionRefusedError
        )
        if refused or "refused" in lowered or "errno 111" in lowered:
            return (
                f"The relay {where} refused the connection: is it running, and are the host "
                "and port in MORNINGPOST_SMTP_URL right?"
            )
        if "name or service" in lowered or "getaddrinfo" in lowered or "nodename" in lowered:
            return f"The relay's host name {self.hostname!r} does not resolve."
        if isinstance(exc, SMTPResponseException):
            return f"The relay {where} refused the session: {_reply(exc.code, exc.message)}"[:400]
        return f"Cannot use the relay {where}: {text}"[:400]

    def new_client(self) -> aiosmtplib.SMTP:
        """Return an unconnected client configured from the URL."""
        return aiosmtplib.SMTP(
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            timeout=self.timeout,
            use_tls=self.scheme == "smtps",
            # smtp:// must upgrade; aiosmtplib fails the connect if STARTTLS is not offered.
            start_tls=self.scheme == "smtp",
        )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[MailerConnection]:
        """Borrow a connection; it goes back to the pool if still open."""
        conn = self._idle.pop() if self._idle else SMTPConnection(self)
        try:
            yield conn
        finally:
            if conn.usable and len(self._idle) < self._max_idle:
                self._idle.append(conn)
            else:
                await conn.aclose()

    async def aclose(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, []
        await asyncio.gather(*(c.aclose() for c in idle))


_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<?([^>\r\n]*)>?", re.IGNORECASE | re.MULTILINE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class CaptureConnection:
    """Saves each message as an .eml file instead of sending it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        *,
        stuffed: bool = False,
        gate: HandOver | None = None,
        relay: str | None = None,
    ) -> SendResult:
        """Write the message to `<Message-ID>.eml` (atomically) and report it sent."""
        if gate is not None and not await gate.wait():
            return _WITHHELD
        if stuffed:
            data = _unstuff(data)
        match = _MESSAGE_ID.search(data[:4096])
        name = match.group(1).decode("ascii", "replace") if match else uuid.uuid4().hex
        path = self.directory / (_UNSAFE.sub("_", name)[:200] + ".eml")
        try:
            await asyncio.to_thread(_write_atomic, path, data)
        except OSError as exc:
            return SendResult(Outcome.retry, f"capture: {exc}")
        return SendResult(Outcome.sent, f"250 captured as {path.name}")


def _unstuff(wire: bytes) -> bytes:
    """Undo dot_stuff: the message as a reader's client would store it."""
    body = wire.removesuffix(b".\r\n")
    if body.startswith(b".."):
        body = body[1:]
    return body.replace(b"\r\n..", b"\r\n.")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


class CaptureMailer:
    """The built-in stand-in for a relay: accepts everything, keeps it on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[MailerConnection]:
        """Return a capture connection."""
        yield CaptureConnection(self.directory)

    async def aclose(self) -> None:
        """Nothing to close."""


def make_mailer(
    settings: Settings, engine: Engine | None = None, observer: RelayObserver | None = None
) -> Mailer:
    """Return the relay pool for settings.smtp_url, or the capture mailer when it is unset.

    The pool keeps its counts in the database: `engine`, or one of its own on DATABASE_URL.
    """
    # relays.py builds on this module; the factory stays here, where its callers import it.
    from app.sends.smtp.relays import RelayPool

    if settings.smtp_url:
        return RelayPool(
            settings.relays,
            timeout=settings.smtp_timeout_seconds,
            max_idle=settings.smtp_connections,
            rest_seconds=settings.relay_rest_seconds,
            engine=engine,
            database_url=settings.database_url,
            observer=observer,
        )
    return CaptureMailer(settings.outbox_dir)
