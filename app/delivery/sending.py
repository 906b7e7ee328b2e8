"""A stream of claimed deliveries sent over reused connections, with no idle gaps.

The next batch is claimed while the current one is on the wire (a low-water mark), results
are written in the background every FLUSH_EVERY messages, and leases of every row still in
hand are renewed while the worker lives. Rows wait in a heap ordered by their domain slot,
so a throttled domain never holds a connection while other mail could go.

The in-flight window (rows that may turn `unknown` if the process dies) is BATCH_SIZE: rows
claimed and not yet recorded — waiting in the heap, on the wire, or in the unwritten results
(at most FLUSH_EVERY, capped at a quarter batch so the next claim always has room) — never
exceed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import metrics
from app.delivery import lease, ledger
from app.delivery.ledger import Claim, Result
from app.delivery.mailer import MailerConnection, Outcome, SendResult
from app.delivery.throttle import RateLimiter, is_error
from app.models import Issue, IssueStatus, utcnow

if TYPE_CHECKING:
    from app.delivery.engine import Worker

log = logging.getLogger("morningpost.delivery")

STREAM_SECONDS = 20.0  # a stream ends now and then so housekeeping (outbox, finish) runs
STATUS_EVERY = 1.0  # how often held rows' issues are checked for a pause or a cancel


class RenderFailed(Exception):
    """The issue could not be rendered; its claims are retried later."""


async def transmit(
    conn: MailerConnection,
    limiter: RateLimiter,
    sender: str,
    to: str,
    make: Callable[[], Awaitable[bytes]],
    *,
    stuffed: bool,
) -> SendResult:
    """Build one message and hand it to the relay; every failure becomes a result, not a raise."""
    try:
        data = await make()
    except RenderFailed as exc:  # nothing was sent: a retry (then failed) is safe
        return SendResult(Outcome.retry, f"render failed: {exc}"[:200])
    except Exception as exc:  # e.g. a non-ASCII address: cannot be sent as built
        return SendResult(Outcome.failed, f"cannot build message: {exc}"[:200])
    await limiter.acquire()
    try:
        started = time.perf_counter()
        return metrics.smtp_observed(await conn.send(sender, to, data, stuffed=stuffed), started)
    except Exception as exc:  # the body may have left: do not guess
        log.exception("mailer raised")
        return SendResult(Outcome.unknown, f"mailer error: {exc}"[:200])


@dataclass(order=True)
class _Item:
    slot: float
    seq: int
    claim: Claim = field(compare=False)


class Recorder:
    """Write results in the background, in order, FLUSH_EVERY at a time."""

    def __init__(
        self,
        write: Callable[[list[Result]], None],
        every: int,
        done: Callable[[list[Result]], None],
    ) -> None:
        self.write = write
        self.every = every
        self.done = done  # called with each chunk once written (or given up on)
        self.buffer: list[Result] = []
        self.queue: asyncio.Queue[list[Result] | None] = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    def add(self, result: Result) -> None:
        """Buffer one result; hand a full buffer to the writer without waiting for it."""
        self.buffer.append(result)
        if len(self.buffer) >= self.every:
            self.queue.put_nowait(self.buffer)
            self.buffer = []

    async def _run(self) -> None:
        while (chunk := await self.queue.get()) is not None:
            try:
                await asyncio.to_thread(self.write, chunk)
            except Exception:
                # Rows stay `sending`; no longer renewed, their leases lapse into `unknown`.
                log.exception("could not record %d results", len(chunk))
            finally:
                self.done(chunk)

    async def close(self) -> None:
        """Write what is buffered and wait for the writer."""
        if self.buffer:
            self.queue.put_nowait(self.buffer)
            self.buffer = []
        self.queue.put_nowait(None)
        await self.task


class DeliveryStream:
    """Claim, send and record deliveries until nothing is due, time is up, or stop is set."""

    def __init__(self, worker: Worker, stop: asyncio.Event) -> None:
        self.w = worker
        self.s = worker.settings
        self.stop = stop
        self.heap: list[_Item] = []
        self.held: set[int] = set()  # claimed, not yet recorded, released or deferred
        self.seq = 0
        self.producing = True
        self.wake = asyncio.Event()  # items arrived, production ended, or stop
        self.hungry = asyncio.Event()  # the heap fell to the low-water mark
        self.low_water = max(1, self.s.batch_size // 2)
        self.counts: Counter[str] = Counter()
        self.handled = 0
        self.releases: list[asyncio.Task[None]] = []  # rows being given back
        # Writes come often enough to leave room in the window for the next claim.
        quarter = max(1, self.s.batch_size // 4)
        self.min_claim = quarter
        self.recorder = Recorder(self._write, min(self.s.flush_every, quarter), self._written)

    async def run(self) -> int:
        """Run the stream; return how many claimed rows were handled."""
        deadline = time.monotonic() + STREAM_SECONDS
        tasks = [asyncio.create_task(self._produce(deadline))]
        n = self.s.smtp_connections
        tasks += [asyncio.create_task(self._sender()) for _ in range(n)]
        keeper = asyncio.create_task(self._housekeep())
        waker = asyncio.create_task(self._wake_on_stop())
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in (keeper, waker, *tasks):
                t.cancel()
            await asyncio.gather(keeper, waker, *tasks, return_exceptions=True)
            # Shielded so a cancelled worker still writes what it knows and gives back the rest.
            await asyncio.shield(self._finish())
        return self.handled

    async def _finish(self) -> None:
        await self.recorder.close()
        unsent = [item.claim.delivery_id for item in self.heap]
        self.heap.clear()
        self._give_back(unsent)
        await asyncio.gather(*self.releases)
        if self.counts:
            self._log_line("stream done")

    # Producing -----------------------------------------------------------------------------

    async def _produce(self, deadline: float) -> None:
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                # Rows held (claimed, not yet recorded) never exceed BATCH_SIZE: that is the
                # in-flight window a crash can leave as `unknown`.
                room = self.s.batch_size - len(self.held)
                if len(self.heap) > self.low_water or room < self.min_claim:
                    self.hungry.clear()
                    await self.hungry.wait()
                    continue
                if not await self._claim_once(room):
                    return
        finally:
            self.producing = False
            self.wake.set()

    async def _claim_once(self, room: int) -> int:
        w = self.w
        limit = min(w._claim_limit(), room)
        started = time.perf_counter()
        claims = await w._db(
            lambda s: ledger.claim_batch(
                s, w.owner, limit, utcnow(), self.s.lease_seconds, domain=w.domain
            )
        )
        metrics.claim_observed(started, len(claims))
        if not claims:
            return 0
        self.held.update(c.delivery_id for c in claims)
        for issue_id in {c.issue_id for c in claims}:
            await w.message_for(issue_id)
        now, wall = time.monotonic(), utcnow()
        deferred: list[tuple[int, datetime]] = []
        w.domains.forget_deferrals()
        for c in claims:
            slot, delay = w.domains.reserve(c.email, now)
            if delay:
                deferred.append((c.delivery_id, wall + timedelta(seconds=delay)))
                continue
            self.seq += 1
            heapq.heappush(self.heap, _Item(slot, self.seq, c))
        self.wake.set()
        if deferred:
            ids = [i for i, _ in deferred]
            why = "deferred: recipient domain over its rate (not an attempt)"
            try:
                await w._db(lambda s: lease.defer(s, w.owner, deferred, utcnow(), why))
            except Exception:
                log.exception("could not defer %d rows; releasing them instead", len(ids))
                self._give_back(ids)
            else:
                self.held.difference_update(ids)
        self.counts["deferred"] += len(deferred)
        self._log_line(f"claimed {len(claims)}")
        return len(claims)

    # Sending -------------------------------------------------------------------------------

    async def _next(self) -> _Item | None:
        while not self.stop.is_set():
            if self.heap:
                wait = self.heap[0].slot - time.monotonic()
                if wait <= 0:
                    item = heapq.heappop(self.heap)
                    if len(self.heap) <= self.low_water:
                        self.hungry.set()
                    return item
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait)
            elif self.producing:
                self.hungry.set()
                self.wake.clear()
                await self.wake.wait()
            else:
                return None
        return None

    async def _sender(self) -> None:
        async with self.w.mailer.connection() as conn:
            while (item := await self._next()) is not None:
                await self._send_one(conn, item.claim)

    async def _send_one(self, conn: MailerConnection, claim: Claim) -> None:
        w = self.w
        date = w.date_header()

        async def make() -> bytes:
            if w.signer is None:
                return w.build(claim, date)
            # RSA signing releases the GIL: on a thread it keeps the loop free to send.
            return await asyncio.to_thread(w.build, claim, date)

        sender = w.envelope_sender(claim.delivery_id)
        res = await transmit(conn, w.limiter, sender, claim.email, make, stuffed=True)
        self.handled += 1
        self.counts[res.outcome] += 1
        self.recorder.add(
            Result(claim.delivery_id, claim.attempts, res.outcome, res.reply, res.suppress)
        )
        if w.adaptive.on_result(res.reply, res.outcome):
            self.counts["slowdowns"] += 1
        share = w.errors.note(claim.issue_id, is_error(res.outcome, res.reply))
        if share is not None:
            reason = (
                f"paused automatically: {share:.0%} of the last {w.errors.window} deliveries "
                f"failed; last reply: {res.reply}"
            )[:500]
            await self._pause(claim.issue_id, reason)

    # Housekeeping --------------------------------------------------------------------------

    async def _pause(self, issue_id: int, reason: str) -> None:
        if await self.w.pause(issue_id, reason):
            log.warning("issue %d %s", issue_id, reason)
        self._drop({issue_id})

    def _drop(self, issue_ids: set[int]) -> None:
        """Stop sending queued rows of these issues and give them back now."""
        keep = [i for i in self.heap if i.claim.issue_id not in issue_ids]
        dropped = [i.claim.delivery_id for i in self.heap if i.claim.issue_id in issue_ids]
        self.heap[:] = keep
        heapq.heapify(self.heap)
        self._give_back(dropped)

    def _give_back(self, ids: list[int]) -> None:
        """Release rows in the background (at once, not at the stream's end: leases run)."""
        if ids:
            self.releases.append(asyncio.create_task(self._release(ids)))

    async def _release(self, ids: list[int]) -> None:
        try:
            await self.w._db(lambda s: lease.release(s, self.w.owner, ids))
        except Exception:
            # Still ours; no longer renewed, the leases lapse into `unknown`. Never resent.
            log.exception("could not release %d rows", len(ids))
        finally:
            # Either way the room they took in the window is free again.
            self.held.difference_update(ids)
            self.hungry.set()

    async def _housekeep(self) -> None:
        renewed_at = time.monotonic()
        while True:
            await asyncio.sleep(STATUS_EVERY)
            issue_ids = {i.claim.issue_id for i in self.heap}
            if issue_ids:
                rows = await self.w._db(lambda s, ids=issue_ids: _statuses(s, ids))
                live = {i for i, status in rows if status == IssueStatus.sending}
                if issue_ids - live:
                    self._drop(issue_ids - live)
            if time.monotonic() - renewed_at >= self.s.lease_seconds / 3:
                renewed_at = time.monotonic()
                await self.w.renew(sorted(self.held))

    async def _wake_on_stop(self) -> None:
        await self.stop.wait()
        self.wake.set()
        self.hungry.set()

    # Recording -----------------------------------------------------------------------------

    def _write(self, chunk: list[Result]) -> None:
        self.w.record(chunk)

    def _written(self, chunk: list[Result]) -> None:
        self.held.difference_update(r.row_id for r in chunk)
        self.hungry.set()

    def _log_line(self, what: str) -> None:
        c = self.counts
        parts = [f"{k} {c[k]}" for k in ("sent", "retry", "failed", "unknown", "deferred") if c[k]]
        rate = self.w.limiter.rate
        slow = f"; slowed to {rate:.0f}/s by the relay" if self.w.adaptive.slowed else ""
        log.info("%s: %s%s", what, ", ".join(parts) or "nothing sent yet", slow)


def _statuses(session: Session, issue_ids: set[int]) -> list[tuple[int, str]]:
    """Return (id, status) of the given issues."""
    rows = session.execute(select(Issue.id, Issue.status).where(Issue.id.in_(issue_ids)))
    return [(i, status) for i, status in rows]
