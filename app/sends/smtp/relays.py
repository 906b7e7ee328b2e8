"""Several relays behind one Mailer: spread by weight, kept within rate and daily quota, failover.

Each message picks a relay (smooth weighted round robin over the usable ones), takes one unit
of that relay's daily quota (reserved from the database in blocks: one write per block, not
per message), waits for one of its rate slots (a GCRA shared by every worker through the
database), and goes over that relay's own pipelined connection.

A relay that refuses the connection, fails TLS or login, or throttles (421, 4.7.x) is rested,
with a rest doubling per failure in a row; the message, if none of its content left (connect,
MAIL, RCPT or DATA refused), goes to another relay at once, so no copy is ever doubled. When
no relay can take a message, every send in progress pauses with a reason naming each relay and
why, the message goes back to the queue uncounted, and the pool resumes those sends by itself
once a rest ends or the UTC day (and so the quota) turns.

One relay without parameters is "plain": results pass through untouched, exactly as before
(the send's own watch pauses it); the pool only counts its messages for GET /relays.

A newsletter may name its relay: its messages go through that relay alone. When that relay
cannot take one (resting, over quota, or no longer configured), the pool does not fall back to
a relay the editor did not choose: it pauses that newsletter's sends with a reason naming the
relay and why, and resumes them by itself once that relay can send again (its rest ends, or
the UTC day turns). The other sends go on.

Here the pool (RelayPool) and what it tells the metrics (RelayObserver); one relay's state is
in relay_state.py, a sender's connection over the pool (the failover loop) in
relay_connection.py.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

from app.db import make_engine
from app.relay_config import RelaySpec
from app.sends.policy import Outcome
from app.sends.smtp.pool import SMTPMailer
from app.sends.smtp.protocols import MailerConnection
from app.sends.smtp.relay_connection import PooledConnection
from app.sends.smtp.relay_state import Relay, _now, _wall
from app.sends.smtp.results import SendResult
from app.sends.store import relays as store

log = logging.getLogger("morningpost.delivery")
T = TypeVar("T")

MAX_REST_SECONDS = 900.0
SYNC_EVERY = 2.0  # seconds between two looks at what other workers know of the relays
# The relay itself asks us to stop: 421 (service closing), an enhanced status 4.7.x, or
# Amazon SES's "454 Throttling failure: ..." (its rate or daily quota; no enhanced status).
_THROTTLE = re.compile(r"(?:^|: )421\b|\b4\.7\.\d{1,3}\b|(?:^|: )454 (?i:throttling)")


@dataclass(frozen=True)
class RelayObserver:
    """What becomes of each relay's results and state (metrics, wired in by app.delivery)."""

    result: Callable[[str, str, str], None] = lambda relay, outcome, reply: None
    state: Callable[[str, bool], None] = lambda relay, up: None


class RelayPool:
    """The Mailer over several relays (or one, counted): pick, limit, rest, fail over, pause."""

    def __init__(
        self,
        specs: list[RelaySpec],
        *,
        timeout: float,
        max_idle: int,
        rest_seconds: float = 30.0,
        engine: Engine | None = None,
        database_url: str = "",
        observer: RelayObserver | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        # Metrics live above the send core: they are handed in (a bare pool counts nothing).
        self.observer = observer or RelayObserver()
        # What UTC day it is for the daily quotas (tests set it to cross midnight).
        self.clock = clock
        self.relays = [
            Relay(s, SMTPMailer(s.url, timeout=timeout, max_idle=max_idle), self._today())
            for s in specs
        ]
        self.by_name = {r.name: r for r in self.relays}
        self.plain = len(specs) == 1 and specs[0].plain
        self.rest_seconds = rest_seconds
        self._engine = engine
        self._own_engine = engine is None
        self._database_url = database_url
        self._borrowed = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_sync = 0.0
        self._synced_day: date | None = None
        self._pause_lock = asyncio.Lock()

    def _today(self) -> date:
        """Return the UTC day the quotas count."""
        return self.clock().astimezone(UTC).date()

    # The Mailer protocol ---------------------------------------------------------------------

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[MailerConnection]:
        """Borrow a connection over the relays; the pool syncs now and then as they are taken."""
        self._borrowed += 1
        # At once when the UTC day turned: sends paused over quota resume at midnight.
        turned = self._synced_day != self._today()
        if (turned or time.monotonic() >= self._next_sync) and not self.plain:
            self._next_sync = time.monotonic() + SYNC_EVERY
            self._synced_day = self._today()
            self._background(self._sync())
        conn = PooledConnection(self)
        try:
            yield conn
        finally:
            await conn.release()
            self._borrowed -= 1
            if self._borrowed == 0:
                # The stream ended: give back unused quota, count what was sent.
                self._background(self._flush())

    async def aclose(self) -> None:
        """Close idle connections; write what is still only in memory."""
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._flush()
        await asyncio.gather(*(r.mailer.aclose() for r in self.relays))
        if self._own_engine and self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # Picking ---------------------------------------------------------------------------------

    async def pick(self, tried: set[str], only: str | None = None) -> Relay | None:
        """Return the next relay by weight that may take a message (quota taken), or None.

        only: the one relay allowed (a newsletter's choice); None when it cannot send now.
        """
        if self.plain:
            relay = self.relays[0]
            if only is not None and (only != relay.name or only in tried):
                return None
            relay.counted += 1
            return relay
        now, today = time.monotonic(), self._today()
        candidates = [
            r
            for r in self.relays
            if r.name not in tried and r.usable(now, today) and only in (None, r.name)
        ]
        while candidates:
            total = sum(r.spec.weight for r in candidates)
            for r in candidates:
                r.current += r.spec.weight
            relay = max(candidates, key=lambda r: r.current)
            relay.current -= total
            if await self._take(relay, today):
                return relay
            candidates.remove(relay)
        return None

    async def _take(self, relay: Relay, today: date) -> bool:
        """Take one unit of the relay's daily quota; False when today's is used up."""
        daily = relay.spec.daily
        if not daily:
            relay.counted += 1
            return True
        async with relay.lock:
            if relay.quota_day != today:  # the UTC day turned: leftovers belong to yesterday
                await self._give_back(relay)
                relay.quota_day = today
            if relay.left <= 0:
                block = max(1, min(50, daily // 20))
                granted = await self.db(
                    lambda c: store.reserve_daily(c, relay.name, today, block, daily)
                )
                relay.left += granted
                if not granted:
                    relay.over_day = today
                    log.warning("relay %s: daily quota of %d used", relay.name, daily)
                    self.observer.state(relay.name, False)
                    return False
            relay.left -= 1
            return True

    def untake(self, relay: Relay) -> None:
        """Give back the unit of quota of a message that never left."""
        if relay.spec.daily and relay.quota_day == self._today():
            relay.left += 1
        elif not relay.spec.daily:
            relay.counted -= 1

    async def slot(self, relay: Relay) -> None:
        """Wait for one of the relay's rate slots (shared by every worker)."""
        rate = relay.spec.rate
        if not rate:
            return
        async with relay.lock:
            now = time.time()
            while relay.slots and relay.slots[0] < now - 1.0:
                relay.slots.popleft()  # stale: spending them now would be a burst
            if not relay.slots:
                k = max(1, math.ceil(rate / 2))  # half a second's worth per database write
                start = await self.db(lambda c: store.reserve_slots(c, relay.name, k, rate, now))
                relay.slots.extend(start + i / rate for i in range(k))
            at = relay.slots.popleft()
        wait = at - time.time()
        if wait > 0:
            await asyncio.sleep(wait)

    # Results ---------------------------------------------------------------------------------

    def settle(self, relay: Relay, res: SendResult) -> bool:
        """Account one result; return True when the relay was at fault and another may try."""
        if res.withheld or res.before_data:
            self.untake(relay)
        if res.withheld:
            return False
        self.observer.result(relay.name, str(res.outcome), res.reply)
        fault = res.alert is not None or (
            res.outcome == Outcome.retry and bool(_THROTTLE.search(res.reply))
        )
        if not fault:
            if relay.failures and res.outcome != Outcome.unknown:
                relay.failures = 0
                log.info("relay %s works again", relay.name)
                self.observer.state(relay.name, True)
                self._background(self._note(relay, rested_until=None))
            return False
        relay.last_error = (res.alert or res.reply)[:300]
        if self.plain:
            self._background(self._note(relay, rested_until=None, error=relay.last_error))
            return False
        now = time.monotonic()
        if now >= relay.rested_until:  # one rest per bout, however many connections saw it
            relay.failures += 1
            rest = min(MAX_REST_SECONDS, self.rest_seconds * 2 ** (relay.failures - 1))
            relay.rested_until = now + rest
            log.warning("relay %s rested for %.1f s: %s", relay.name, rest, relay.last_error)
            self.observer.state(relay.name, False)
            self._background(
                self._note(relay, rested_until=_wall(relay.rested_until), error=relay.last_error)
            )
        return res.before_data

    async def all_down(self) -> SendResult:
        """Pause every send in progress, naming each relay and why; the message goes back."""
        now, today = time.monotonic(), self._today()
        why = "; ".join(f"{r.name}: {r.why_not(now, today)}" for r in self.relays)
        reason = f"{store.PAUSE_PREFIX}: {why}"[:500]
        async with self._pause_lock:
            # Every time, not once: a send may have been resumed since (the update is cheap,
            # and finds nothing to do when everything is paused already).
            paused = await self.db(lambda c: store.pause_sending(c, reason))
            if paused:
                log.warning("sends %s %s", paused, reason)
        return SendResult(Outcome.retry, reason[:300], withheld=True, before_data=True)

    async def pinned_down(self, name: str) -> SendResult:
        """Pause the sends of newsletters that chose this relay, saying why; the message goes back.

        No fallback to another relay: the editor chose this one (for its reputation, its
        contract, its region). The pool resumes these sends once it can send again.
        """
        relay = self.by_name.get(name)
        if relay is None:
            names = ", ".join(self.by_name)
            why = f"it is not configured (MORNINGPOST_SMTP_URL names {names})"
        else:
            why = relay.why_not(time.monotonic(), self._today())
        reason = f"{store.pinned_prefix(name)}: {why}"[:500]
        async with self._pause_lock:
            paused = await self.db(lambda c: store.pause_pinned(c, name, reason))
            if paused:
                log.warning("sends %s %s", paused, reason)
        return SendResult(Outcome.retry, reason[:300], withheld=True, before_data=True)

    # The database ----------------------------------------------------------------------------

    async def db(self, fn: Callable[[Connection], T]) -> T:
        """Run fn(connection) in one transaction on a thread."""
        if self._engine is None:
            self._engine = make_engine(self._database_url)
        engine = self._engine

        def work() -> T:
            with engine.begin() as conn:
                return fn(conn)

        return await asyncio.to_thread(work)

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("relay bookkeeping failed: %s", task.exception())

    async def _note(
        self, relay: Relay, *, rested_until: datetime | None, error: str | None = None
    ) -> None:
        at = datetime.now(UTC)
        failures = relay.failures
        await self.db(
            lambda c: store.note_state(
                c, relay.name, rested_until=rested_until, failures=failures, error=error, at=at
            )
        )

    async def _give_back(self, relay: Relay) -> None:
        """Return reserved, unused quota to its day (called holding relay.lock)."""
        n, relay.left = relay.left, 0
        if n > 0:
            day = relay.quota_day
            await self.db(lambda c: store.give_back_daily(c, relay.name, day, n))

    async def _flush(self) -> None:
        for relay in self.relays:
            if relay.spec.daily:
                async with relay.lock:
                    await self._give_back(relay)
            elif relay.counted > 0:
                n, relay.counted = relay.counted, 0
                today = self._today()
                await self.db(partial(store.count_usage, relay=relay.name, day=today, n=n))

    async def _sync(self) -> None:
        """Learn other workers' rests and used-up quotas; resume sends once a relay can send."""
        today, now = self._today(), datetime.now(UTC)
        lines = await self.db(
            lambda c: store.relay_lines(c, [r.spec for r in self.relays], today, now)
        )
        mono = time.monotonic()
        for relay, line in zip(self.relays, lines, strict=True):
            if line.rested_until is not None:
                until = mono + (line.rested_until - now).total_seconds()
                relay.rested_until = max(relay.rested_until, until)
                relay.last_error = line.last_error or relay.last_error
            if line.state == "over quota" and relay.left <= 0:
                relay.over_day = today
            elif relay.over_day == today and line.sent_today < line.daily:
                # Another worker gave back quota it had reserved and not used: send with it.
                relay.over_day = None
        usable = [r.name for r in self.relays if r.usable(mono, today)]
        for relay in self.relays:
            # The gauge follows the rest's end and the UTC day's turn, not only a success.
            self.observer.state(relay.name, relay.name in usable)
        if usable:
            resumed = await self.db(store.resume_relay_paused)
            if resumed:
                log.warning("sends %s resumed: a relay can send again", resumed)
            # Sends kept to one relay resume only when that very relay can send.
            pinned = await self.db(lambda c: store.resume_pinned(c, usable))
            if pinned:
                log.warning("sends %s resumed: their relay can send again", pinned)
