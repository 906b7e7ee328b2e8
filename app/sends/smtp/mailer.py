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
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
from aiosmtplib import SMTPException, SMTPResponseException, SMTPTimeoutError

from app.config import Settings
from app.sends.policy import Outcome, is_hard_bounce
from app.sends.smtp.wire import ReplyTimeout, Wire, WireError

__all__ = ["CaptureMailer", "Mailer", "MailerConnection", "Outcome", "SMTPMailer", "SendResult"]


@dataclass(frozen=True)
class SendResult:
    """The outcome of one send, the reply that decided it, and whether to suppress the address."""

    outcome: Outcome
    reply: str
    suppress: bool = False
    # Set when the relay itself is unusable (refused, no STARTTLS, login or TLS refused,
    # silent): a sentence an editor can act on. Such failures are never the reader's.
    alert: str | None = None


class MailerConnection(Protocol):
    """One connection to the relay; sends one message at a time."""

    async def send(
        self, sender: str, recipient: str, data: bytes, *, stuffed: bool = False
    ) -> SendResult:
        """Send `data` (CRLF) to one recipient; never raises for SMTP trouble.

        stuffed=True: `data` is already dot-stuffed and ends with CRLF.CRLF
        (PreparedMessage.fill_wire), so it goes on the wire as it is.
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
        self, sender: str, recipient: str, data: bytes, *, stuffed: bool = False
    ) -> SendResult:
        """Run one SMTP transaction and classify its outcome."""
        mail, rcpt = _path(sender), _path(recipient)
        if mail is None or rcpt is None:
            bad = sender if mail is None else recipient
            return SendResult(Outcome.failed, f"address cannot be sent as plain ASCII: {bad!r}")
        try:
            wire = await self._ready()
        except SMTPResponseException as exc:
            # Greeting, STARTTLS or AUTH refused: the relay's problem, never the recipient's.
            reply = f"connect: {_reply(exc.code, exc.message)}"
            return SendResult(Outcome.retry, reply, alert=self._mailer.problem(exc))
        except (SMTPException, WireError, OSError) as exc:
            reply = f"connect: {exc}"
            return SendResult(Outcome.retry, reply, alert=self._mailer.problem(exc))
        try:
            refused = await self._envelope(wire, mail, rcpt)
        except (WireError, OSError) as exc:
            # The body was not sent yet: whatever broke, nothing can have been accepted.
            wire.close()
            return SendResult(Outcome.retry, f"before DATA: {exc}")
        if refused is not None:
            self._dirty = True
            return refused
        return await self._body(wire, data if stuffed else dot_stuff(data))

    async def _envelope(self, wire: Wire, mail: bytes, rcpt: bytes) -> SendResult | None:
        """Send MAIL, RCPT and DATA; return the refusal, or None once the relay said 354."""
        commands = (b"MAIL FROM:" + mail, b"RCPT TO:" + rcpt, b"DATA")
        if wire.pipelining:
            # One write, three replies (RFC 2920: DATA ends the group).
            wire.write(b"\r\n".join(commands) + b"\r\n")
            replies = [await wire.reply() for _ in commands]
        else:
            replies = []
            for command, ok in zip(commands, _EXPECTED, strict=True):
                replies.append(reply := await wire.command(command))
                if reply.code not in ok:
                    break
        for reply, ok, may_suppress in zip(replies, _EXPECTED, (False, True, False), strict=False):
            if reply.code not in ok:
                if replies[-1].code == 354:
                    # DATA was opened although MAIL or RCPT failed: close it empty (RFC 2920).
                    wire.write(b".\r\n")
                    await wire.reply()
                return _by_code(reply.code, reply.message, may_suppress=may_suppress)
        return None

    async def _body(self, wire: Wire, stuffed: bytes) -> SendResult:
        try:
            wire.write(stuffed)  # raises (nothing sent) if the socket is already closing
        except (WireError, OSError) as exc:
            wire.close()
            return SendResult(Outcome.retry, f"disconnected after 354: {exc}")
        try:
            final = await wire.reply()
        except ReplyTimeout:
            return SendResult(Outcome.unknown, "timed out waiting for the reply to the message")
        except (WireError, OSError) as exc:
            wire.close()
            return SendResult(Outcome.unknown, f"disconnected after the message was sent: {exc}")
        if final.code == 250:
            return SendResult(Outcome.sent, str(final))
        return _by_code(final.code, final.message, may_suppress=True)

    async def aclose(self) -> None:
        """Say QUIT politely; close regardless."""
        wire, self._wire = self._wire, None
        if wire is not None:
            await wire.quit()


_EXPECTED: tuple[tuple[int, ...], ...] = ((250,), (250, 251), (354,))  # MAIL, RCPT, DATA


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
        self, sender: str, recipient: str, data: bytes, *, stuffed: bool = False
    ) -> SendResult:
        """Write the message to `<Message-ID>.eml` (atomically) and report it sent."""
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


def make_mailer(settings: Settings) -> Mailer:
    """Return the SMTP mailer for settings.smtp_url, or the capture mailer when it is unset."""
    if settings.smtp_url:
        return SMTPMailer(
            settings.smtp_url,
            timeout=settings.smtp_timeout_seconds,
            max_idle=settings.smtp_connections,
        )
    return CaptureMailer(settings.outbox_dir)
