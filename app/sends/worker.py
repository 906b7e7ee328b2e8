"""The delivery worker: the main loop, and nothing else.

Each turn: start the sends that are due, end dead leases (reaper.py), tidy now and then, send
an outbox batch (outbox.py), run one stream of deliveries (stream.py, handover.py), and mark
the sends with nothing left open as finished. The render cache is messages.py, commit routing
commits.py; what the layers above do with the core's facts comes in as hooks (hooks.py), wired
by app/delivery.py, the one place a Worker is built for real.

Crash semantics (the in-flight window): a claimed batch is committed as `sending` under this
worker's lease before any SMTP traffic, and leases are renewed while the worker lives. A row's
content goes on the wire only after its hand-over mark is committed, together with the results
gathered so far (stream.py). If the process dies, rows never handed over go back to the queue
when their lease ends; only handed-over rows without a result (at most the window) become
`unknown`, since they may have reached the relay: none is resent blindly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.context import Context
from app.db import OnThread
from app.models import utcnow
from app.sends.commits import CommitRouter
from app.sends.dkim import DkimSigner
from app.sends.hooks import SendHooks
from app.sends.ledger_port import StreamLedger
from app.sends.messages import MessageCache, RenderFailed
from app.sends.outbox import OutboxSender
from app.sends.ports import Throttles
from app.sends.reaper import Reaper
from app.sends.smtp.mailer import Mailer
from app.sends.store import sends
from app.sends.store.ledger import Result, RetryPolicy
from app.sends.stream import DeliveryStream
from app.sends.throttle import AdaptiveRate, DomainSchedule, ErrorWatch, RateLimiter
from app.sends.watch import BounceBurst, RelayWatch

log = logging.getLogger("morningpost.delivery")

TIDY_EVERY_SECONDS = 3600.0  # purging unconfirmed sign-ups is not urgent

__all__ = ["RateLimiter", "RenderFailed", "Worker", "new_owner"]


class DatabaseUnavailable(Exception):
    """The database stayed unreachable past WORKER_GIVE_UP_SECONDS; the worker stops."""


def _short(exc: DBAPIError) -> str:
    """Return the first line of a driver error, without SQLAlchemy's background link."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return (text.strip().splitlines() or ["unknown error"])[0][:200]


def new_owner() -> str:
    """Return a lease owner id unique to this process and worker: host:pid:random."""
    host = socket.gethostname()[:30].replace(":", "_")
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


class Worker:
    """Deliver what the ledger says, in streams of batches, until told to stop."""

    def __init__(
        self,
        ctx: Context,
        mailer: Mailer,
        *,
        owner: str | None = None,
        hooks: SendHooks | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ctx = ctx
        # What the layers above do with the core's facts (the pre-send check, suppressions,
        # webhooks, tidying, metrics), passed in so the core never imports them. Built by
        # app/delivery.py; a bare worker (tests, benches) acts on none of them.
        self.hooks = h = hooks or SendHooks()
        # What time it is for "who is due" (scheduled issues, local-time waves); tests set it.
        self.clock = clock
        self.settings = s = ctx.settings
        self.mailer = mailer
        self.owner = owner or new_owner()
        self.policy = RetryPolicy(s.retry_backoff_seconds, s.max_attempts)
        self.limiter = RateLimiter(s.rate_per_second)
        self.adaptive = AdaptiveRate(self.limiter)
        self.domains = DomainSchedule(s.domain_rates, s.domain_rate_default)
        self.errors = ErrorWatch(s.pause_error_rate, s.pause_window)
        # Relay failures in a row before a send pauses itself: every connection twice.
        self.relay = RelayWatch(max(4, 2 * s.smtp_connections))
        self.bursts = BounceBurst()
        # DKIM is signed over each recipient's exact bytes; None when no key is configured.
        self.signer = DkimSigner.from_settings(s)
        self.throttles = Throttles(
            self.limiter, self.adaptive, self.domains, self.errors, self.relay, self.bursts
        )
        self.db = OnThread(ctx.sessions)
        self.messages = MessageCache(ctx, self.db, self.signer)
        self.commits = CommitRouter(ctx, self.owner, self.policy, h)
        self.reaper = Reaper(s, self.owner, self.db)
        self.outbox = OutboxSender(
            ctx,
            mailer,
            self.owner,
            db=self.db,
            policy=self.policy,
            messages=self.messages,
            limiter=self.limiter,
            relay=self.relay,
            signer=self.signer,
            observe=h.observe_smtp,
        )
        self._stop = asyncio.Event()
        self._next_tidy = 0.0  # monotonic time of the next housekeeping pass

    # Loops ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; then finish the messages in hand, release the rest, return."""
        self._stop = stop
        log.info("worker %s started", self.owner)
        down_since: float | None = None  # monotonic time the database stopped answering
        try:
            while not stop.is_set():
                wait = self.settings.poll_interval_seconds
                try:
                    busy = await self.run_once()
                    if down_since is not None:
                        log.warning("the database answers again; delivering")
                    down_since = None
                except DBAPIError as exc:
                    # Unreachable or refusing: one line, not a traceback a poll; back off, and
                    # give up after a while so a supervisor sees the process fail.
                    busy = False
                    first = down_since is None
                    down_since = time.monotonic() if down_since is None else down_since
                    down = time.monotonic() - down_since
                    if down >= self.settings.worker_give_up_seconds:
                        raise DatabaseUnavailable(
                            f"the database did not answer for {down:.0f} s: {_short(exc)}"
                        ) from None
                    wait = min(30.0, max(wait, 1.0) * 2 ** min(int(down // 5), 5))
                    if first or (wait == 30.0 and int(down) % 60 < wait):
                        log.warning(
                            "the database does not answer (%s); retrying every %.0f s",
                            _short(exc),
                            wait,
                        )
                except Exception:
                    # Anything else must not kill a long-running worker; the ledger is intact.
                    log.exception("delivery iteration failed; retrying shortly")
                    busy = False
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
        finally:
            await self.mailer.aclose()
            self.commits.close()
            log.info("worker %s stopped", self.owner)

    async def run_until_idle(self) -> None:
        """Process until nothing is claimable right now (no pending, no due retry, no outbox)."""
        try:
            while await self.run_once():
                pass
        finally:
            await self.mailer.aclose()  # idle connections reopen lazily if the worker is reused
            self.commits.close()

    async def run_once(self) -> bool:
        """Run housekeeping, the outbox and one delivery stream; return whether any was claimed."""
        now = self.clock()
        started = await self.db(lambda s: sends.start_due_issues(s, now, self.hooks.gate))
        if started:
            log.info("started scheduled issues %s", started)
        await self.reaper.expire()
        if time.monotonic() >= self._next_tidy:
            self._next_tidy = time.monotonic() + TIDY_EVERY_SECONDS
            tidied = await self.db(lambda s: self.hooks.tidy(s, now))
            if any(tidied.values()):
                log.info("housekeeping: %s", tidied)
        sent_outbox = await self.outbox.batch(self._stop)
        self.messages.new_stream()  # re-read issues each stream: an edit or a fix is picked up
        # Built per stream: it holds the worker's commit, and a worker holding it back would
        # be a cycle that keeps the commit connection open until the cyclic GC runs.
        ledger = StreamLedger(
            self.settings,
            self.owner,
            self.db,
            commit=self.commit,  # bound here, so a subclass's commit is the one streams use
            reaper=self.reaper,
            clock=self.clock,
            observe_claim=self.hooks.observe_claim,
            bounces_undone=self.hooks.bounces_undone,
        )
        stream = DeliveryStream(
            self.settings,
            self.mailer,
            self.messages,
            ledger,
            self.throttles,
            self._stop,
            observe=self.hooks.observe_smtp,
            observe_commit=self.hooks.observe_commit,
            observe_wait=self.hooks.observe_wait,
        )
        try:
            sent = await stream.run()
        finally:
            # Connections of the commit path live as long as a stream (they reopen cheaply).
            self.commits.close()
        finished = await self.db(self._finish_issues)
        if finished:
            log.info("issues %s finished", finished)
        return bool(sent_outbox or sent)

    def _finish_issues(self, session: Session) -> list[int]:
        """Mark sends with nothing left open as sent, and tell the layers above, in one go."""
        finished = sends.finish_issues(session, utcnow())
        if finished:
            self.hooks.finished(session, finished)  # issue.sent, in this very transaction
        return finished

    def commit(
        self, results: list[Result], handed: list[int], undo_bounces: set[int] | frozenset[int]
    ) -> Awaitable[set[int]]:
        """Record results and hand the next group over, in one transaction (commits.py).

        Returns (an awaitable of) the ids actually handed over: only those may go on the wire.
        """
        return self.commits.commit(results, handed, undo_bounces)
