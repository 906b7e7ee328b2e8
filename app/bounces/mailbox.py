"""Poll a mailbox for bounces (MORNINGPOST_BOUNCE_MAILBOX), for those who cannot point an MX here.

Reports found there are read as the SMTP listener reads them: a DSN or ARF report names a
delivery only through a valid VERP tag. A handled message is moved to BOUNCE_MAILBOX_FOLDER
(IMAP) or deleted (POP3); a message that is not a report, or cannot be parsed, stays where it
is and is reported once. The same message seen again (a move that failed after its record was
committed) counts once: its digest is remembered like a provider's event id.

The standard library's imaplib and poplib do the talking, on a thread: they are well kept, and
imaplib speaks STARTTLS, which aioimaplib does not; one poll a minute needs no event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import imaplib
import logging
import poplib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote, urlsplit

from sqlalchemy.exc import DBAPIError

from app.bounces.parse import parse_report
from app.bounces.service import first_time, record_inbound
from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.models import utcnow

log = logging.getLogger("morningpost.bounces.mailbox")

MAX_PER_POLL = 500  # a flood of reports is worked through a poll at a time
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
TIMEOUT_SECONDS = 30.0


class MailboxError(Exception):
    """The mailbox could not be reached, or refused us; the message says why."""


@dataclass(frozen=True)
class MailboxAddress:
    """Where the mailbox is and how to sign in, from MORNINGPOST_BOUNCE_MAILBOX."""

    scheme: str  # imaps, imap (STARTTLS) or pop3s
    host: str
    port: int
    user: str
    password: str
    folder: str

    @classmethod
    def parse(cls, url: str) -> MailboxAddress:
        """Split a mailbox URL (already checked by the settings)."""
        parts = urlsplit(url)
        default = {"imaps": 993, "imap": 143, "pop3s": 995}[parts.scheme]
        return cls(
            scheme=parts.scheme,
            host=parts.hostname or "",
            port=parts.port or default,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            folder=unquote(parts.path.lstrip("/")) or "INBOX",
        )


class Mailbox(Protocol):
    """A signed-in mailbox: list what is waiting, then settle each message."""

    def waiting(self) -> Iterator[tuple[str, bytes]]:
        """Yield (id, raw message) of the messages waiting, oldest first."""
        ...

    def handled(self, message_id: str) -> None:
        """Move a handled message out of the way (IMAP) or delete it (POP3)."""
        ...


class ImapMailbox:
    """IMAP over TLS (imaps://) or with STARTTLS required (imap://)."""

    def __init__(self, address: MailboxAddress, done_folder: str) -> None:
        tls = ssl.create_default_context()
        where = f"{address.host}:{address.port}"
        try:
            if address.scheme == "imaps":
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    address.host, address.port, ssl_context=tls, timeout=TIMEOUT_SECONDS
                )
            else:
                conn = imaplib.IMAP4(address.host, address.port, timeout=TIMEOUT_SECONDS)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"{where}: {exc}") from None
        try:
            if address.scheme == "imap":
                if "STARTTLS" not in conn.capabilities:
                    raise MailboxError(f"{where}: the IMAP server does not offer STARTTLS")
                conn.starttls(ssl_context=tls)
            conn.login(address.user, address.password)
        except (OSError, imaplib.IMAP4.error) as exc:
            conn.shutdown()
            raise MailboxError(f"{where}: {exc}") from None
        except MailboxError:
            conn.shutdown()
            raise
        self.conn = conn
        self.done_folder = done_folder
        status, _ = conn.select(_quote(address.folder))
        if status != "OK":
            raise MailboxError(f"no folder {address.folder!r}")
        conn.create(_quote(done_folder))  # already there: a NO we can ignore

    def waiting(self) -> Iterator[tuple[str, bytes]]:
        """Yield the messages of the folder (peeked: nothing is marked read)."""
        status, data = self.conn.uid("SEARCH", "ALL")
        uids = data[0].split() if status == "OK" and data and data[0] else []
        for uid in uids[:MAX_PER_POLL]:
            status, parts = self.conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if status == "OK" and isinstance(raw, bytes):
                yield uid.decode(), raw[:MAX_MESSAGE_BYTES]

    def handled(self, message_id: str) -> None:
        """Move the message to the done folder (MOVE, or COPY then expunge)."""
        target = _quote(self.done_folder)
        if "MOVE" in self.conn.capabilities:
            self.conn.uid("MOVE", message_id, target)
            return
        status, _ = self.conn.uid("COPY", message_id, target)
        if status == "OK":
            self.conn.uid("STORE", message_id, "+FLAGS.SILENT", r"(\Deleted)")
            self.conn.expunge()

    def close(self) -> None:
        """Sign out."""
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self.conn.logout()


class Pop3Mailbox:
    """POP3 over TLS; handled messages are deleted when the session ends (QUIT)."""

    def __init__(self, address: MailboxAddress) -> None:
        where = f"{address.host}:{address.port}"
        try:
            self.conn = poplib.POP3_SSL(
                address.host,
                address.port,
                context=ssl.create_default_context(),
                timeout=TIMEOUT_SECONDS,
            )
        except (OSError, poplib.error_proto) as exc:
            raise MailboxError(f"{where}: {exc}") from None
        try:
            self.conn.user(address.user)
            self.conn.pass_(address.password)
        except (OSError, poplib.error_proto) as exc:
            self.conn.close()
            raise MailboxError(f"{where}: {exc}") from None

    def waiting(self) -> Iterator[tuple[str, bytes]]:
        """Yield the messages of the maildrop by number."""
        _resp, listing, _octets = self.conn.list()
        for line in listing[:MAX_PER_POLL]:
            number, _, size = line.decode().partition(" ")
            if int(size or 0) > MAX_MESSAGE_BYTES:
                continue
            _resp, lines, _octets = self.conn.retr(int(number))
            yield number, b"\r\n".join(lines) + b"\r\n"

    def handled(self, message_id: str) -> None:
        """Mark the message deleted (it goes at QUIT)."""
        self.conn.dele(int(message_id))

    def close(self) -> None:
        """End the session, which deletes the handled messages."""
        with contextlib.suppress(OSError, poplib.error_proto):
            self.conn.quit()


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextlib.contextmanager
def open_mailbox(settings: Settings) -> Iterator[Mailbox]:
    """Connect and sign in to the configured mailbox; sign out afterwards."""
    address = MailboxAddress.parse(settings.bounce_mailbox)
    box: ImapMailbox | Pop3Mailbox
    if address.scheme == "pop3s":
        box = Pop3Mailbox(address)
    else:
        box = ImapMailbox(address, settings.bounce_mailbox_folder)
    try:
        yield box
    finally:
        box.close()


@dataclass
class Poller:
    """Polls one mailbox; remembers which unreadable messages it has already reported."""

    ctx: Context
    reported: set[str] = field(default_factory=set)

    def poll_once(self) -> tuple[int, int]:
        """Handle what is waiting; return (handled, left in place)."""
        handled = kept = 0
        with open_mailbox(self.ctx.settings) as box:
            for message_id, raw in box.waiting():
                digest = hashlib.sha256(raw).hexdigest()
                if self._record(raw, digest):
                    box.handled(message_id)
                    handled += 1
                else:
                    kept += 1
        return handled, kept

    def _record(self, raw: bytes, digest: str) -> bool:
        """Record one message; tell whether it was a report (handled) or stays."""
        try:
            is_report = parse_report(raw).is_report
        except Exception:  # any message a stranger sends must not stop the poll
            is_report = False
        if not is_report:
            if digest not in self.reported:
                self.reported.add(digest)
                log.warning(
                    "bounce mailbox: a message that is not a DSN or feedback report stays "
                    "there (sha256 %s…)",
                    digest[:16],
                )
            return False
        with session_scope(self.ctx.sessions) as session:
            if first_time(session, "mailbox", digest, utcnow()):
                record_inbound(session, raw, "mailbox", self.ctx.settings, utcnow())
        return True


async def run_bounce_mailbox(ctx: Context, stop: asyncio.Event) -> None:
    """Poll MORNINGPOST_BOUNCE_MAILBOX every interval until `stop` (nothing when unset)."""
    settings = ctx.settings
    if not settings.bounce_mailbox:
        return
    poller = Poller(ctx)
    last_error = ""
    while not stop.is_set():
        try:
            handled, kept = await asyncio.to_thread(poller.poll_once)
            if handled:
                log.info("bounce mailbox: %d reports handled, %d messages left", handled, kept)
            last_error = ""
        except (MailboxError, DBAPIError) as exc:
            problem = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
            if problem != last_error:  # one line per new problem, not one a minute
                log.warning("bounce mailbox: %s", problem)
                last_error = problem
        except Exception:  # a bug must not stop the worker beside it: log it, poll again
            log.exception("bounce mailbox poll failed; trying again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.bounce_mailbox_interval_seconds)
