"""The delivery worker: claim a batch, fill prepared bytes per recipient, send, record.

Crash semantics (the in-flight window): a claimed batch is committed as `sending` under this
worker's lease before any SMTP traffic, and results are written every FLUSH_EVERY messages.
If the process dies, the rows it had claimed but not yet recorded (at most batch_size) stay in
`sending` until their lease expires, then become `unknown`: some of them may have reached the
relay, so none is resent blindly. Nothing is ever lost or sent twice by the ledger itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from email.utils import format_datetime
from typing import TypeVar

from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.delivery import ledger, outbox
from app.delivery.ledger import Claim, Result, RetryPolicy
from app.delivery.mailer import Mailer, MailerConnection, Outcome, SendResult
from app.delivery.message import PreparedMessage
from app.delivery.outbox import OutboxClaim
from app.issues.scheduling import start_due_issues
from app.models import Issue, OutboxKind, utcnow

log = logging.getLogger("morningpost.delivery")

FLUSH_EVERY = 25  # results are written at least this often within a batch
CACHE_SIZE = 8  # prepared issues kept per process
T = TypeVar("T")


def new_owner() -> str:
    """Return a lease owner id unique to this process and worker."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"


class RenderFailed(Exception):
    """The issue could not be rendered; its claims are retried later."""


class RateLimiter:
    """A token bucket shared by all sending tasks; rate 0 means unlimited."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = 1.0  # start nearly empty so a fresh worker does not burst
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until one message may go out."""
        if self.rate <= 0:
            return
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class Worker:
    """Deliver what the ledger says, in batches, until told to stop."""

    def __init__(self, ctx: Context, mailer: Mailer, *, owner: str | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.mailer = mailer
        self.owner = owner or new_owner()
        self.policy = RetryPolicy(self.settings.retry_backoff_seconds, self.settings.max_attempts)
        self.limiter = RateLimiter(self.settings.rate_per_second)
        self.domain = self.settings.sender.domain
        self._prepared: OrderedDict[tuple[int, datetime, bool], PreparedMessage] = OrderedDict()
        self._stop = asyncio.Event()

    # Loops ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; then finish the message in hand, release the rest, return."""
        self._stop = stop
        log.info("worker %s started", self.owner)
        try:
            while not stop.is_set():
                try:
                    busy = await self.run_once()
                except Exception:
                    # A database hiccup must not kill a long-running worker; the ledger is intact.
                    log.exception("delivery iteration failed; retrying shortly")
                    busy = False
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.poll_interval_seconds)
        finally:
            await self.mailer.aclose()
            log.info("worker %s stopped", self.owner)

    async def run_until_idle(self) -> None:
        """Process until nothing is claimable right now (no pending, no due retry, no outbox)."""
        try:
            while await self.run_once():
                pass
        finally:
            await self.mailer.aclose()  # idle connections reopen lazily if the worker is reused

    async def run_once(self) -> bool:
        """Run one iteration; return whether any message was claimed."""
        now = utcnow()
        started = await self._db(lambda s: start_due_issues(s, now))
        if started:
            log.info("started scheduled issues %s", started)
        expired = await self._db(lambda s: ledger.expire_leases(s, utcnow()))
        if expired:
            log.warning("%d leases expired: marked unknown, not resent", expired)
        outbox = await self._outbox_batch()
        sent = await self._delivery_batch()
        finished = await self._db(lambda s: ledger.finish_issues(s, utcnow()))
        if finished:
            log.info("issues %s finished", finished)
        return bool(outbox or sent)

    # Batches -------------------------------------------------------------------------------

    def _claim_limit(self) -> int:
        limit = self.settings.batch_size
        rate = self.settings.rate_per_second
        if rate > 0:
            # Keep a batch's sending time well inside its lease, or it would expire mid-batch.
            limit = min(limit, max(1, int(rate * self.settings.lease_seconds / 2)))
        return limit

    async def _delivery_batch(self) -> int:
        s = self.settings
        claims = await self._db(
            lambda ses: ledger.claim_batch(
                ses, self.owner, self._claim_limit(), utcnow(), s.lease_seconds, domain=self.domain
            )
        )
        if not claims:
            return 0
        messages: dict[int, PreparedMessage | Exception] = {}
        for issue_id in {c.issue_id for c in claims}:
            try:
                messages[issue_id] = await self._prepared_issue(issue_id, test=False)
            except Exception as exc:
                # Nothing was sent, so a retry (with backoff, then failed) is safe and visible.
                log.exception("issue %d could not be rendered", issue_id)
                messages[issue_id] = exc
        date = format_datetime(utcnow(), usegmt=True)
        tokens = self.ctx.tokens

        def build(claim: Claim) -> bytes:
            prepared = messages[claim.issue_id]
            if isinstance(prepared, Exception):
                raise RenderFailed(str(prepared))
            return prepared.fill(
                to=claim.email,
                unsubscribe_token=tokens.unsubscribe_token(claim.subscriber_id),
                preferences_token=tokens.preferences_token(claim.subscriber_id),
                message_id=claim.message_id,
                date=date,
            )

        def record(results: list[Result]) -> None:
            with session_scope(self.ctx.sessions) as ses:
                ledger.record_results(ses, self.owner, results, utcnow(), policy=self.policy)

        outcomes = await self._send_all(
            [(c.delivery_id, c.attempts, c.email) for c in claims],
            build_by_id(claims, build),
            record,
        )
        unsent = [c.delivery_id for c in claims if c.delivery_id not in outcomes]
        if unsent:
            await self._db(lambda ses: ledger.release(ses, self.owner, unsent))
        counts = {o: sum(1 for v in outcomes.values() if v == o) for o in Outcome}
        log.info(
            "batch of %d: %s%s",
            len(claims),
            ", ".join(f"{k} {v}" for k, v in counts.items() if v),
            f", released {len(unsent)}" if unsent else "",
        )
        return len(claims)

    async def _outbox_batch(self) -> int:
        s = self.settings
        claims = await self._db(
            lambda ses: outbox.claim_outbox(
                ses, self.owner, s.batch_size, utcnow(), s.lease_seconds
            )
        )
        if not claims:
            return 0
        date = format_datetime(utcnow(), usegmt=True)
        data: dict[int, bytes | Exception] = {}
        for c in claims:
            try:
                data[c.outbox_id] = await self._outbox_bytes(c, date)
            except Exception as exc:  # a broken template must not block the rest
                log.exception("outbox message %d could not be built", c.outbox_id)
                data[c.outbox_id] = RenderFailed(str(exc))

        def build(claim_id: int) -> bytes:
            value = data[claim_id]
            if isinstance(value, Exception):
                raise value
            return value

        def record(results: list[Result]) -> None:
            with session_scope(self.ctx.sessions) as ses:
                outbox.record_outbox(ses, self.owner, results, utcnow(), policy=self.policy)

        outcomes = await self._send_all(
            [(c.outbox_id, c.attempts, c.to_address) for c in claims], build, record
        )
        unsent = [c.outbox_id for c in claims if c.outbox_id not in outcomes]
        if unsent:
            await self._db(lambda ses: outbox.release_outbox(ses, self.owner, unsent))
        log.info("outbox batch of %d sent", len(claims))
        return len(claims)

    async def _send_all(
        self,
        items: list[tuple[int, int, str]],
        build: Callable[[int], bytes],
        record: Callable[[list[Result]], None],
    ) -> dict[int, Outcome]:
        """Send (row id, attempts, address) items over concurrent connections; record as we go."""
        queue: asyncio.Queue[tuple[int, int, str]] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        outcomes: dict[int, Outcome] = {}
        buffer: list[Result] = []
        sender = self.settings.sender.addr_spec

        async def flush() -> None:
            if buffer:
                chunk = buffer[:]
                buffer.clear()
                await asyncio.to_thread(record, chunk)

        async def one(conn: MailerConnection, row_id: int, attempts: int, to: str) -> None:
            try:
                data = build(row_id)
            except RenderFailed as exc:
                res = SendResult(Outcome.retry, f"render failed: {exc}"[:200])
            except Exception as exc:  # e.g. a non-ASCII address: cannot be sent as built
                res = SendResult(Outcome.failed, f"cannot build message: {exc}"[:200])
            else:
                await self.limiter.acquire()
                try:
                    res = await conn.send(sender, to, data)
                except Exception as exc:  # the body may have left: do not guess
                    log.exception("mailer raised")
                    res = SendResult(Outcome.unknown, f"mailer error: {exc}"[:200])
            outcomes[row_id] = res.outcome
            buffer.append(Result(row_id, attempts, res.outcome, res.reply, res.suppress))
            if len(buffer) >= FLUSH_EVERY:
                await flush()

        async def sender_task() -> None:
            async with self.mailer.connection() as conn:
                while not self._stop.is_set():
                    try:
                        item = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    await one(conn, *item)

        n = max(1, min(self.settings.smtp_connections, len(items)))
        try:
            await asyncio.gather(*(sender_task() for _ in range(n)))
        finally:
            # Shielded so a cancelled worker still writes what it knows.
            await asyncio.shield(flush())
        return outcomes

    # Helpers -------------------------------------------------------------------------------

    async def _db(self, fn: Callable[..., T]) -> T:
        """Run fn(session) in one transaction on a thread (sessions are synchronous)."""

        def work() -> T:
            with session_scope(self.ctx.sessions) as session:
                return fn(session)

        return await asyncio.to_thread(work)

    async def _prepared_issue(self, issue_id: int, *, test: bool) -> PreparedMessage:
        """Return the issue's PreparedMessage, rendering it once per (issue, version)."""
        row = await self._db(
            lambda s: s.execute(
                select(
                    Issue.subject, Issue.preheader, Issue.slug, Issue.blocks, Issue.updated_at
                ).where(Issue.id == issue_id)
            ).one()
        )
        key = (issue_id, row.updated_at, test)
        if key in self._prepared:
            self._prepared.move_to_end(key)
            return self._prepared[key]

        def render() -> PreparedMessage:
            compiled = self.ctx.renderer.compile_issue(
                subject=row.subject, preheader=row.preheader, slug=row.slug, blocks=row.blocks
            )
            if test:
                compiled = replace(compiled, subject=f"[TEST] {compiled.subject}")
            return PreparedMessage.build(compiled, self.settings)

        prepared = await asyncio.to_thread(render)  # premailer is slow: keep the loop free
        self._prepared[key] = prepared
        while len(self._prepared) > CACHE_SIZE:
            self._prepared.popitem(last=False)
        return prepared

    async def _outbox_bytes(self, claim: OutboxClaim, date: str) -> bytes:
        tokens = self.ctx.tokens
        # Test copies are not deliveries: their links carry tokens for subscriber 0, which
        # verify but belong to nobody, so clicking them in a test copy changes nothing.
        sub_id = claim.subscriber_id or 0
        msgid = f"<mp.outbox.{claim.outbox_id}@{self.domain}>"
        if claim.kind == OutboxKind.test and claim.issue_id is not None:
            prepared = await self._prepared_issue(claim.issue_id, test=True)
            sub_id = 0
        else:
            token = tokens.confirm_token(sub_id, claim.to_address)
            url = f"{self.settings.base_url}/confirm/{token}"

            def render() -> PreparedMessage:
                compiled = self.ctx.renderer.confirmation_email(confirm_url=url)
                return PreparedMessage.build(compiled, self.settings, list_headers=False)

            prepared = await asyncio.to_thread(render)
        return prepared.fill(
            to=claim.to_address,
            unsubscribe_token=tokens.unsubscribe_token(sub_id),
            preferences_token=tokens.preferences_token(sub_id),
            message_id=msgid,
            date=date,
        )


def build_by_id(claims: list[Claim], build: Callable[[Claim], bytes]) -> Callable[[int], bytes]:
    """Adapt a per-claim builder to the row-id interface of _send_all."""
    by_id = {c.delivery_id: c for c in claims}
    return lambda row_id: build(by_id[row_id])
