"""PooledConnection: one sender's connection over the relay pool, failing over between relays."""

from __future__ import annotations

import contextlib
import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from app.sends.policy import Outcome
from app.sends.smtp.protocols import HandOver, MailerConnection
from app.sends.smtp.relay_state import Relay
from app.sends.smtp.results import SendResult

if TYPE_CHECKING:  # relays.py hands each borrower one of these: the type only
    from app.sends.smtp.relays import RelayPool

__all__ = ["PooledConnection"]

log = logging.getLogger("morningpost.delivery")


class PooledConnection:
    """A sender's connection over the pool: one pipelined connection per relay it uses."""

    def __init__(self, pool: RelayPool) -> None:
        self.pool = pool
        self._conns: dict[str, MailerConnection] = {}
        self._plain: MailerConnection | None = None  # the lone plain relay's, once opened
        self._stack = AsyncExitStack()

    async def _conn(self, relay: Relay) -> MailerConnection:
        conn = self._conns.get(relay.name)
        if conn is None:
            conn = await self._stack.enter_async_context(relay.mailer.connection())
            self._conns[relay.name] = conn
        return conn

    async def release(self) -> None:
        """Give each relay's connection back to its mailer."""
        with contextlib.suppress(Exception):
            await self._stack.aclose()

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
        """Send over the next relay; one that fails before the content goes hands it on.

        relay: the only relay allowed (a newsletter's choice); when it cannot send, that
        newsletter's sends pause (no fallback).
        """
        pool = self.pool
        if pool.plain and (relay is None or relay == pool.relays[0].name):
            # One relay without rate, quota or weight: nothing to pick, wait for or fail
            # over to, so the message goes straight to its connection (what pick(), slot()
            # and settle() would do, without their per-message awaits).
            only = pool.relays[0]
            only.counted += 1
            conn = self._plain or await self._conn(only)
            self._plain = conn
            res = await conn.send(sender, recipient, data, stuffed=stuffed, gate=gate)
            pool.settle(only, res)  # a plain relay is never failed over
            return res
        tried: set[str] = set()
        while True:
            chosen: Relay | None = None
            try:
                chosen = await pool.pick(tried, relay)
                if chosen is None:
                    return await (pool.all_down() if relay is None else pool.pinned_down(relay))
                conn = await self._conn(chosen)
                await pool.slot(chosen)
            except Exception as exc:
                # The pool's own bookkeeping (quota, rate slot, pause) failed, before any byte
                # of this message left: it goes back to the queue, never `unknown`.
                if chosen is not None:
                    pool.untake(chosen)
                log.warning("relay bookkeeping failed; the message goes back: %s", exc)
                reply = f"not sent: relay bookkeeping failed: {exc}"[:300]
                return SendResult(Outcome.retry, reply, withheld=True, before_data=True)
            res = await conn.send(sender, recipient, data, stuffed=stuffed, gate=gate)
            if not pool.settle(chosen, res):
                return res
            tried.add(chosen.name)  # rested; nothing of this message left: the next one tries
