"""What a mailer offers the send core: the Mailer and MailerConnection protocols.

With them the HandOver gate, which a send waits on before any byte of its content goes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from app.sends.smtp.results import SendResult

__all__ = ["HandOver", "Mailer", "MailerConnection"]


class HandOver:
    """A row's leave to send its content, decided by a commit; the envelope may go before it."""

    def __init__(self, on_wait: Callable[[], None]) -> None:
        self.decided: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._on_wait = on_wait  # told when a connection stands waiting for the decision
        self.waited = False
        self.waited_at = 0.0  # perf_counter() when a connection began to wait (metrics)

    def refused(self) -> bool:
        """Tell whether it was already decided that the content may not go."""
        return self.decided.done() and not self.decided.result()

    async def wait(self) -> bool:
        """Return True once the content may go, False if it never may."""
        if not self.decided.done() and not self.waited:
            self.waited = True
            self.waited_at = time.perf_counter()
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
