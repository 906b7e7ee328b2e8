"""A stream of claimed deliveries sent over reused connections, with no idle gaps.

The next batch is claimed while the current one is on the wire (a low-water mark). Rows wait
in a heap ordered by their domain slot, so a throttled domain never holds a connection while
other mail could go. Two senders share each connection: one message's content awaits its reply
while the next one's envelope is already on its way (SMTPConnection.send).

The crash window is what is on the wire. A row's content only goes once its `handed_at` mark
is committed; its envelope (MAIL, RCPT, DATA, which deliver nothing) may go before, and the
content waits at the 354 for the mark (a HandOver gate). Marks go in small groups, in the same
transaction that records the results gathered since the last one; on SQLite that transaction
runs on the driver, on the loop (store/hot.py). Rows marked and not yet recorded never exceed
the window (HANDOVER_WINDOW, default 2 × SMTP_CONNECTIONS): after a SIGKILL only those can turn
`unknown`; every other claimed row goes back to the queue when its lease ends. That half of
the stream, the hand-over window and the commit loop, is in handover.py.

A stream knows no worker: it is handed narrow collaborators (ports.py), a message source
(messages.py), a ledger port (ledger_port.py) and the throttles.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections import Counter
from datetime import datetime, timedelta
from functools import partial

from app.config import Settings
from app.models import IssueStatus, utcnow
from app.sends.handover import PER_CONNECTION, HandOvers, _Item
from app.sends.messages import RenderFailed
from app.sends.ports import (
    LedgerPort,
    MessageSource,
    Observe,
    ObserveCommit,
    ObserveWait,
    Throttles,
    unobserved,
    unobserved_commit,
    unobserved_wait,
)
from app.sends.smtp.mailer import Mailer, MailerConnection, Outcome
from app.sends.store import lease
from app.sends.store.ledger import Result
from app.sends.throttle import is_error
from app.sends.transmit import transmit

log = logging.getLogger("morningpost.delivery")

STREAM_SECONDS = 20.0  # a stream ends now and then so housekeeping (outbox, finish) runs
STATUS_EVERY = 1.0  # how often held rows' issues are checked for a pause or a cancel

__all__ = ["DeliveryStream", "RenderFailed", "transmit"]


class DeliveryStream(HandOvers):
    """Claim, send and record deliveries until nothing is due, time is up, or stop is set."""

    def __init__(
        self,
        settings: Settings,
        mailer: Mailer,
        messages: MessageSource,
        ledger: LedgerPort,
        throttles: Throttles,
        stop: asyncio.Event,
        *,
        observe: Observe = unobserved,
        observe_commit: ObserveCommit = unobserved_commit,
        observe_wait: ObserveWait = unobserved_wait,
    ) -> None:
        super().__init__(settings, observe_commit, observe_wait)
        self.s = settings
        self.mailer = mailer
        self.messages = messages
        self.ledger = ledger
        # The throttles, each held directly: the per-message path looks each up once.
        self.limiter = throttles.limiter
        self.adaptive = throttles.adaptive
        self.domains = throttles.domains
        self.errors = throttles.errors
        self.relay = throttles.relay
        self.bursts = throttles.bursts
        self.observe = observe
        self.stop = stop
        # (slot, seq, item): tuples compare in C (seq is unique, so items are never compared);
        # the dataclass's generated ordering cost a Python call per heap comparison.
        self.heap: list[tuple[float, int, _Item]] = []
        self.held: set[int] = set()  # claimed, not yet recorded, released or deferred
        self.seq = 0
        self.producing = True
        self.wake = asyncio.Event()  # items arrived, production ended, or stop
        self.hungry = asyncio.Event()  # the heap fell to the low-water mark
        self.low_water = max(1, self.s.batch_size // 2)
        self.counts: Counter[str] = Counter()
        self.handled = 0
        self.releases: list[asyncio.Task[None]] = []  # rows being given back
        self.min_claim = max(1, self.s.batch_size // 4)
        # One write on held rows at a time: a renewal, a release and a commit on two
        # connections lock the same rows in different orders (PostgreSQL found the deadlock).
        self.writing = asyncio.Lock()
        self.senders_done = False
        self.winding = False  # a claim or a sender failed: finish what is in hand, take no more
        # Looked up once per stream, not per message (a stream lasts STREAM_SECONDS).
        self.debug = log.isEnabledFor(logging.DEBUG)

    async def run(self) -> int:
        """Run the stream; return how many claimed rows were handled."""
        deadline = time.monotonic() + STREAM_SECONDS
        tasks = [asyncio.create_task(self._produce(deadline))]
        n = self.s.smtp_connections
        tasks += [asyncio.create_task(self._sender()) for _ in range(n)]
        keeper = asyncio.create_task(self._housekeep())
        waker = asyncio.create_task(self._wake_on_stop())
        self.committer = asyncio.create_task(self._commit_loop())
        try:
            await self._all_or_wind_down(tasks)
        finally:
            self.senders_done = True
            for t in (keeper, waker, *tasks):
                t.cancel()
            await asyncio.gather(keeper, waker, *tasks, return_exceptions=True)
            # Shielded so a cancelled worker still writes what it knows and gives back the rest.
            await asyncio.shield(self._finish())
        return self.handled

    async def _all_or_wind_down(self, tasks: list[asyncio.Task[None]]) -> None:
        """Wait for the producer and the senders; if one fails, the others finish first.

        A failed claim (or any sender's error) must not cancel the senders mid-message: their
        rows are handed over and may be accepted by the relay, and a row whose result is never
        written lapses into `unknown` when its lease ends. So production stops, each sender
        finishes the message in hand, and the first error is raised after that.
        """
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = [e for t in done if not t.cancelled() and (e := t.exception()) is not None]
        if not failed:
            return
        self.winding = True
        self.wake.set()
        self.hungry.set()
        if pending:
            await asyncio.wait(pending)
        for task in pending:
            if not task.cancelled() and (error := task.exception()) is not None:
                log.error("while winding down after a failure: %r", error)
        raise failed[0]

    async def _finish(self) -> None:
        self.commit_wanted.set()
        if self.committer is not None:
            await self.committer
        if self.results:  # outcomes of the messages in hand when stop came
            results, self.results = self.results, []
            try:
                async with self.writing:
                    await self.ledger.commit(results, [], self.undo_bounces)
            except Exception:
                log.exception("could not record %d results", len(results))
        self._withhold(set(self.wanted))
        unsent = [item.claim.delivery_id for _, _, item in self.heap]
        self.heap.clear()
        self.exposed.difference_update(unsent)
        self._give_back(unsent)
        await asyncio.gather(*self.releases)
        if self.counts:
            self._log_line("stream done")

    # Producing -----------------------------------------------------------------------------

    async def _produce(self, deadline: float) -> None:
        try:
            while not self.stop.is_set() and not self.winding and time.monotonic() < deadline:
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
        claims = await self.ledger.claim(room)
        if not claims:
            return 0
        self.held.update(c.delivery_id for c in claims)
        for issue_id in {c.issue_id for c in claims}:
            await self.messages.message_for(issue_id)
        now, wall = time.monotonic(), utcnow()
        deferred: list[tuple[int, datetime]] = []
        self.domains.forget_deferrals()
        for c in claims:
            slot, delay = self.domains.reserve(c.email, now)
            if delay:
                deferred.append((c.delivery_id, wall + timedelta(seconds=delay)))
                continue
            self.seq += 1
            heapq.heappush(self.heap, (slot, self.seq, _Item(slot, self.seq, c)))
        self.wake.set()
        if deferred:
            ids = [i for i, _ in deferred]
            why = "deferred: recipient domain over its rate (not an attempt)"
            try:
                async with self.writing:
                    await self.ledger.defer(deferred, why)
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
        while not self.stop.is_set() and not self.winding:
            if self.heap:
                wait = self.heap[0][0] - time.monotonic()
                if wait <= 0:
                    item = heapq.heappop(self.heap)[2]
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
        async with self.mailer.connection() as conn:
            # Two messages per connection: one's content awaits its reply while the next one's
            # envelope is already on its way (SMTPConnection.send), so the relay never idles.
            await asyncio.gather(*(self._send_loop(conn) for _ in range(PER_CONNECTION)))

    async def _send_loop(self, conn: MailerConnection) -> None:
        while (item := await self._next()) is not None:
            await self._send_one(conn, item)

    async def _send_one(self, conn: MailerConnection, item: _Item) -> None:
        m = self.messages
        claim = item.claim
        sender = m.envelope_sender(claim.delivery_id)
        # The envelope may go before the hand-over is committed (it delivers nothing); the
        # content waits for it. So the window holds only rows whose content may be out.
        gate = self._want(item)
        try:
            res = await transmit(
                conn,
                self.limiter,
                sender,
                claim.email,
                partial(m.build, claim, m.date_header()),
                stuffed=True,
                gate=gate,
                observe=self.observe,
                relay=m.relay_for(claim.issue_id),
                threaded=m.signer is not None,
            )
        finally:
            # Refused or failed before it needed the gate: close it (what _withhold does).
            self._decide(claim.delivery_id, False)
        if res.withheld:
            self._give_back([claim.delivery_id])  # never sent: back to the queue, uncounted
            return
        self.handled += 1
        self.counts[res.outcome] += 1
        self.results.append(
            Result(claim.delivery_id, claim.attempts, res.outcome, res.reply, res.suppress)
        )
        if res.outcome in (Outcome.failed, Outcome.unknown) or self.debug:
            # One line per delivery that needs a look (all of them at DEBUG), with its ids as
            # fields for log shippers (MORNINGPOST_LOG_FORMAT=json).
            log.log(
                logging.DEBUG if res.outcome in (Outcome.sent, Outcome.retry) else logging.INFO,
                "delivery %d of issue %d: %s (%s)",
                claim.delivery_id,
                claim.issue_id,
                res.outcome,
                res.reply,
                extra={
                    "issue_id": claim.issue_id,
                    "delivery_id": claim.delivery_id,
                    "outcome": str(res.outcome),
                },
            )
        self._consider_commit()
        if self.relay.note(res.alert):
            # Every connection fails the same way: the relay is unusable, not the readers.
            await self._pause(claim.issue_id, f"paused: {res.alert}")
            return
        if res.alert is not None:
            if self.relay.should_log(res.alert, time.monotonic()):
                log.warning(
                    "relay problem while sending issue %d: %s",
                    claim.issue_id,
                    res.alert,
                    extra={"issue_id": claim.issue_id, "delivery_id": claim.delivery_id},
                )
                await self.ledger.note_alert(claim.issue_id, res.alert)
            return
        if self.adaptive.on_result(res.reply, res.outcome):
            self.counts["slowdowns"] += 1
        hard = res.suppress and res.outcome == Outcome.failed
        burst = self.bursts.note(claim.issue_id, claim.email, res.reply, hard)
        if burst is not None:
            # Undone in every commit from now on, so late replies of the same burst are too.
            self.undo_bounces.add(claim.issue_id)
            self.commit_wanted.set()
            await self._pause(claim.issue_id, burst.reason(), undo_bounces=True)
            return
        share = self.errors.note(claim.issue_id, is_error(res.outcome, res.reply))
        if share is not None:
            reason = (
                f"paused automatically: {share:.0%} of the last {self.errors.window} deliveries "
                f"failed; last reply: {res.reply}"
            )[:500]
            await self._pause(claim.issue_id, reason)

    # Housekeeping --------------------------------------------------------------------------

    async def _pause(self, issue_id: int, reason: str, undo_bounces: bool = False) -> None:
        try:
            paused = await self.ledger.pause(issue_id, reason, undo_bounces)
        finally:
            self.errors.forget(issue_id)
        if paused:
            log.warning("issue %d %s", issue_id, reason, extra={"issue_id": issue_id})
        self._drop({issue_id})

    def _drop(self, issue_ids: set[int]) -> None:
        """Stop sending queued rows of these issues and give them back now."""
        keep = [e for e in self.heap if e[2].claim.issue_id not in issue_ids]
        dropped = [e[2].claim.delivery_id for e in self.heap if e[2].claim.issue_id in issue_ids]
        self.heap[:] = keep
        heapq.heapify(self.heap)
        # Not handed over yet: their content never goes (the sends give them back).
        self._withhold(
            {i for i, (item, _) in self.wanted.items() if item.claim.issue_id in issue_ids}
        )
        self._give_back(dropped)

    def _give_back(self, ids: list[int]) -> None:
        """Release rows in the background (at once, not at the stream's end: leases run)."""
        if ids:
            self.releases.append(asyncio.create_task(self._release(ids)))

    async def _release(self, ids: list[int]) -> None:
        try:
            async with self.writing:
                await self.ledger.release(ids)
        except Exception:
            # Still ours; no longer renewed, the leases lapse into `unknown`. Never resent.
            log.exception("could not release %d rows", len(ids))
        else:
            # A row handed over whose content never left (the relay pool withheld it: its
            # newsletter's relay cannot send) is back in the queue, its mark cleared: it no
            # longer takes room in the window, or other sends' rows would wait for ever.
            if self.exposed.intersection(ids):
                self.exposed.difference_update(ids)
                self._consider_commit()
        finally:
            # Either way the room they took in the window is free again.
            self.held.difference_update(ids)
            self.hungry.set()

    async def _housekeep(self) -> None:
        renewed_at = time.monotonic()
        while True:
            await asyncio.sleep(STATUS_EVERY)
            try:
                renewed_at = await self._housekeep_once(renewed_at)
            except Exception:
                # One refused read or renewal must not end the renewals: the next try comes
                # well within the lease, and the stream goes on meanwhile.
                log.exception("could not check or renew the rows in hand; trying again")

    async def _housekeep_once(self, renewed_at: float) -> float:
        """Drop rows of sends no longer sending; renew leases when due. Return when renewed."""
        issue_ids = {e[2].claim.issue_id for e in self.heap}
        issue_ids |= {item.claim.issue_id for item, _ in self.wanted.values()}
        if issue_ids:
            rows = await self.ledger.statuses(issue_ids)
            live = {i for i, status in rows if status == IssueStatus.sending}
            if issue_ids - live:
                self._drop(issue_ids - live)
        if time.monotonic() - renewed_at >= lease.renew_interval(self.s.lease_seconds):
            async with self.writing:
                await self.ledger.renew(sorted(self.held))
            renewed_at = time.monotonic()
        return renewed_at

    async def _wake_on_stop(self) -> None:
        await self.stop.wait()
        # Rows whose envelope went but whose content was not handed over are not "in hand":
        # they go back (their connections hang up inside DATA), the rest finish.
        self._withhold(set(self.wanted))
        self.wake.set()
        self.hungry.set()

    def _log_line(self, what: str) -> None:
        c = self.counts
        parts = [f"{k} {c[k]}" for k in ("sent", "retry", "failed", "unknown", "deferred") if c[k]]
        rate = self.limiter.rate
        slow = f"; slowed to {rate:.0f}/s by the relay" if self.adaptive.slowed else ""
        sent = ", ".join(parts) or "nothing sent yet"
        log.info("%s: %s%s; %s", what, sent, slow, self.commit_figures())
