"""SMTPMailer: the connections to one relay, kept open and handed out one per sending task.

It also says in one sentence why the relay could not be used (the alert an editor sees).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote, urlsplit

import aiosmtplib
from aiosmtplib import SMTPResponseException, SMTPTimeoutError

from app.relay_config import default_port
from app.sends.smtp.protocols import MailerConnection
from app.sends.smtp.results import _reply
from app.sends.smtp.transaction import SMTPConnection

__all__ = ["SMTPMailer"]


class SMTPMailer:
    """Connections to one relay, kept open and handed out one per sending task."""

    def __init__(self, url: str, *, timeout: float, max_idle: int = 4) -> None:
        parts = urlsplit(url)
        self.hostname = parts.hostname or "localhost"
        self.scheme = parts.scheme
        # Explicit, so the port we connect to is the one alerts and the relay table name.
        self.port = parts.port or default_port(parts.scheme)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self._idle: list[SMTPConnection] = []
        self._max_idle = max_idle

    def problem(self, exc: BaseException) -> str:
        """Say in one sentence why the relay could not be used, and what to check."""
        where = f"{self.hostname}:{self.port}"
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
