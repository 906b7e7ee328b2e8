"""Handing rows over and recording results: the half of a delivery stream that commits.

A row's content goes on the wire only once its hand-over mark is committed (a HandOver gate);
marks go in small groups, in the same transaction that records the results gathered since the
last one (the ledger port's commit). Rows marked and not yet recorded never exceed the window:
after a SIGKILL only those can turn `unknown` (stream.py says the rest).

Moved out of stream.py as it was (issue 18, item 4): DeliveryStream inherits it, so the
per-message calls (`_want`, `_withhold`, `_consider_commit`) stay plain method calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from app.config import Settings
from app.sends.ports import (
    LedgerPort,
    ObserveCommit,
    ObserveWait,
    unobserved_commit,
    unobserved_wait,
)
from app.sends.smtp.mailer import HandOver
from app.sends.store.rows import Claim, Result

log = logging.getLogger("morningpost.delivery")

PER_CONNECTION = 2  # messages in flight on one connection (the next envelope is pipelined)


@dataclass(order=True)
class _Item:
    slot: float
    seq: int
    claim: Claim = field(compare=False)


class HandOvers:
    """The hand-over window of one stream: rows wanted, rows exposed, results to write."""

    # Set by the stream (stream.py), read here.
    ledger: LedgerPort
    stop: asyncio.Event
    held: set[int]
    hungry: asyncio.Event
    wake: asyncio.Event
    writing: asyncio.Lock
    senders_done: bool

    def __init__(
        self,
        settings: Settings,
        observe_commit: ObserveCommit = unobserved_commit,
        observe_wait: ObserveWait = unobserved_wait,
    ) -> None:
        # Handed over (marked, may be on the wire) and not yet durably recorded: the only rows
        # a crash can leave `unknown`. Never more than `window`.
        connections = settings.smtp_connections
        self.window = settings.handover_window or 2 * connections
        self.group = max(1, min(self.window // 2, settings.batch_size))
        # Rows a commit should hand over, unless a connection waits: half the window, but
        # never more than half the senders (only they want rows; a wide window would wait).
        senders = PER_CONNECTION * connections
        self.commit_at = max(1, min(self.window, senders) // 2)
        # Rows whose envelope is on its way and that wait for their hand-over (the gate each
        # one's content waits for), oldest first.
        self.wanted: dict[int, tuple[_Item, HandOver]] = {}
        self.waiting = 0  # connections standing at a 354 for a hand-over
        self.exposed: set[int] = set()
        self.results: list[Result] = []  # known outcomes not yet written
        self.commit_wanted = asyncio.Event()
        self.failures = 0  # commits failed in a row
        self.committer: asyncio.Task[None] | None = None
        self.undo_bounces: set[int] = set()  # sends whose 5.1.x replies were the relay's fault
        # Commits that held, the rows they handed over and their time: a stream's pace is
        # about window / (2 × commit time), so the log line shows them (bench/throughput.py).
        self.commits = 0
        self.commit_rows = 0
        self.commit_seconds = 0.0
        # Connections that stood at a 354 until their row's hand-over was committed, and for
        # how long in all: the time the relay waited for the database.
        self.waits = 0
        self.wait_seconds = 0.0
        self.observe_commit = observe_commit
        self.observe_wait = observe_wait

    def commit_figures(self) -> str:
        """Describe the commits so far (how many, rows, ms each) and the waits they caused."""
        if not self.commits:
            return "no commits"
        waited = (
            f"; content waited for its hand-over {self.waits} times "
            f"({self.wait_seconds / self.waits * 1e3:.1f} ms each)"
            if self.waits
            else ""
        )
        return (
            f"commits {self.commits} ({self.commit_rows / self.commits:.1f} rows handed over, "
            f"{self.commit_seconds / self.commits * 1e3:.1f} ms each){waited}"
        )

    def _consider_commit(self) -> None:
        """Ask for a commit when one is worth its cost, or a connection would wait without it.

        A commit costs about as much as sending a message, so each should carry several
        results and hand several rows over; but rows may only be handed over as results free
        room in the window. Commit when half the window can be handed over, when a connection
        stands at a 354 waiting for its row's mark, when nothing handed over is left in
        flight, or, with nothing wanted, when results are all there is left to write. (Half,
        not a quarter: on 2 shared cores the halved commit cost outweighs the rare waits.)
        """
        if self.commit_wanted.is_set():
            return
        if not self.wanted:
            if self.results and self._idle_wire():
                self.commit_wanted.set()
            return
        room = self._room()
        if room <= 0:
            return
        if self.waiting or self._idle_wire() or min(room, len(self.wanted)) >= self.commit_at:
            self.commit_wanted.set()

    def _idle_wire(self) -> bool:
        """Tell whether every row handed over has its result in (so nothing is in flight)."""
        return len(self.exposed) <= len(self.results)

    def _room(self) -> int:
        """Return how many rows the next commit may hand over."""
        recorded_next = sum(1 for r in self.results if r.row_id in self.exposed)
        return self.window - len(self.exposed) + recorded_next

    def _want(self, item: _Item) -> HandOver:
        """Queue a row for hand-over; its content waits for the returned gate."""
        gate = HandOver(self._connection_waits)
        if self.stop.is_set():  # stopping: nothing more is handed over
            gate.decided.set_result(False)
            return gate
        self.wanted[item.claim.delivery_id] = (item, gate)
        self._consider_commit()
        return gate

    def _connection_waits(self) -> None:
        self.waiting += 1
        self._consider_commit()

    def _decide(self, delivery_id: int, handed: bool) -> None:
        entry = self.wanted.pop(delivery_id, None)
        if entry is None or entry[1].decided.done():
            return
        gate = entry[1]
        gate.decided.set_result(handed)
        if gate.waited:
            self.waiting -= 1
            if handed:
                waited = time.perf_counter() - gate.waited_at
                self.waits += 1
                self.wait_seconds += waited
                self.observe_wait(waited)

    def _withhold(self, ids: set[int]) -> None:
        """Close the gates of rows not handed over yet: they will not be sent."""
        for delivery_id in ids:
            self._decide(delivery_id, False)

    def _due_group(self) -> list[_Item]:
        """Return the oldest wanted rows that may be handed over without widening the window."""
        want = min(self.group, self._room())
        return [item for item, _ in list(self.wanted.values())[: max(0, want)]]

    async def _commit_loop(self) -> None:
        """Write known results and hand over the next group, one transaction each time."""
        while True:
            finishing = self.senders_done or self.stop.is_set()
            if not finishing:
                await self.commit_wanted.wait()
                finishing = self.senders_done or self.stop.is_set()
            self.commit_wanted.clear()
            items = [] if finishing else self._due_group()
            results, self.results = self.results, []
            if not items and not results:
                if finishing:
                    self._withhold(set(self.wanted))  # no commit will hand these over now
                    return
                continue
            handed = [i.claim.delivery_id for i in items]
            started = time.perf_counter()
            try:
                async with self.writing:
                    marked = await self.ledger.commit(results, handed, self.undo_bounces)
            except Exception:
                # Nothing of this transaction holds: the group was not handed over (it stays
                # wanted, its content waits) and the results are tried again; only a worker
                # that is stopping gives up on them (their leases then lapse into `unknown`).
                self.failures += 1
                if not finishing or self.failures < 3:
                    # Transient (a deadlock, a restart): try the same results again.
                    log.exception("could not record %d results; trying again", len(results))
                    self.results[:0] = results
                    results = []
                else:
                    log.exception("could not record %d results", len(results))
                await asyncio.sleep(0.5)
                self.commit_wanted.set()
                marked, handed = set(), []
            else:
                self.failures = 0
                took = time.perf_counter() - started
                self.commits += 1
                self.commit_rows += len(marked)
                self.commit_seconds += took
                self.observe_commit(took)
            lost = {i for i in handed if i not in marked}
            if lost:
                # Another worker took these leases over (this one stalled, or was judged
                # dead): they are not ours to send any more.
                log.warning("%d claimed rows were taken over; not sending them", len(lost))
                self.held.difference_update(lost)
            self.exposed.update(marked)
            for delivery_id in marked:
                self._decide(delivery_id, True)
            self._withhold(lost)
            done = {r.row_id for r in results}
            self.exposed.difference_update(done)
            self.held.difference_update(done)
            self.hungry.set()
            self.wake.set()
            self._consider_commit()
