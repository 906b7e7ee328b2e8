"""One message handed to the relay: built, rate-limited and sent; every failure a result.

Shared by the delivery stream (stream.py) and the outbox (outbox.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from app.sends.messages import RenderFailed
from app.sends.ports import Observe, unobserved
from app.sends.smtp.mailer import HandOver, MailerConnection, Outcome, SendResult
from app.sends.throttle import RateLimiter

log = logging.getLogger("morningpost.delivery")


async def transmit(
    conn: MailerConnection,
    limiter: RateLimiter,
    sender: str,
    to: str,
    make: Callable[[], bytes],
    *,
    stuffed: bool,
    gate: HandOver | None = None,
    observe: Observe = unobserved,
    relay: str | None = None,
    threaded: bool = False,
) -> SendResult:
    """Build one message and hand it to the relay; every failure becomes a result, not a raise.

    threaded: build on a thread (RSA signing releases the GIL, so the loop keeps sending).
    """
    try:
        data = await asyncio.to_thread(make) if threaded else make()
    except RenderFailed as exc:  # nothing was sent: a retry (then failed) is safe
        return SendResult(Outcome.retry, f"render failed: {exc}"[:200])
    except Exception as exc:  # e.g. a non-ASCII address: cannot be sent as built
        return SendResult(Outcome.failed, f"cannot build message: {exc}"[:200])
    if limiter.rate > 0:  # unlimited (the default): no lock to take
        await limiter.acquire()
    try:
        started = time.perf_counter()
        sent = await conn.send(sender, to, data, stuffed=stuffed, gate=gate, relay=relay)
        return sent if sent.withheld else observe(sent, started)
    except Exception as exc:  # the body may have left: do not guess
        log.exception("mailer raised")
        return SendResult(Outcome.unknown, f"mailer error: {exc}"[:200])
