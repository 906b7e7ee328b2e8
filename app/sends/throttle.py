"""Sending politely: a global rate, per-recipient-domain budgets, back-off when the relay asks.

All of it is per worker process and in memory: several workers each enforce their own share.
Times are time.monotonic() seconds.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque

from app.sends.policy import Outcome

# 421 (service closing), 450/451/452 (try later), any enhanced status 4.7.x (policy), or Amazon
# SES's "454 Throttling failure: ..." (no enhanced status): the relay asks us to slow down;
# the recipient is not at fault.
_THROTTLE = re.compile(r"(?:^|: )(?:421|45[012])\b|\b4\.7\.\d{1,3}\b|(?:^|: )454 (?i:throttling)")


def is_throttle(reply: str) -> bool:
    """Tell whether an SMTP reply asks the sender to slow down."""
    return bool(_THROTTLE.search(reply))


def is_error(outcome: Outcome, reply: str) -> bool:
    """Tell whether a result counts against a send's error rate (throttling does not)."""
    if outcome == Outcome.sent:
        return False
    return not (outcome == Outcome.retry and is_throttle(reply))


class RateLimiter:
    """A token bucket shared by all sending tasks; rate 0 means unlimited."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = 1.0  # start nearly empty so a fresh worker does not burst
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    @property
    def capacity(self) -> float:
        """Return the burst size: one second's worth."""
        return max(1.0, self.rate)

    async def acquire(self) -> None:
        """Wait until one message may go out."""
        if self.rate <= 0:
            return
        async with self.lock:
            while self.rate > 0:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class AdaptiveRate:
    """AIMD on the limiter: halve on a throttle reply, add a little back every quiet second.

    The configured rate (0 = unlimited) is the ceiling recovery returns to. One burst of
    throttle replies from many connections counts as one signal (a cooldown), so a single
    congested moment halves the rate once, not once per connection.
    """

    def __init__(self, limiter: RateLimiter, *, floor: float = 1.0, cooldown: float = 1.0) -> None:
        self.limiter = limiter
        self.ceiling = limiter.rate
        self.floor = floor
        self.cooldown = cooldown
        self.cuts = 0  # how many times this worker slowed down (visible to tests and logs)
        self._target = 0.0  # the rate recovery aims for when the ceiling is unlimited
        self._last_cut = -1e9
        self._last_step = time.monotonic()
        self._sent: deque[float] = deque(maxlen=4096)

    @property
    def slowed(self) -> bool:
        """Tell whether the worker currently sends below its configured rate."""
        return self.limiter.rate > 0 and (self.ceiling <= 0 or self.limiter.rate < self.ceiling)

    def observed_rate(self, now: float) -> float:
        """Return messages/s accepted over the last second."""
        while self._sent and self._sent[0] < now - 1.0:
            self._sent.popleft()
        return float(len(self._sent))

    def on_result(self, reply: str, outcome: Outcome, now: float | None = None) -> bool:
        """Adjust to one result; return True when this result slowed the worker down."""
        now = time.monotonic() if now is None else now
        if outcome == Outcome.retry and is_throttle(reply):
            return self._cut(now)
        if outcome == Outcome.sent:
            self._sent.append(now)
            self._recover(now)
        return False

    def _cut(self, now: float) -> bool:
        if now - self._last_cut < self.cooldown:
            return False
        current = self.limiter.rate or max(self.observed_rate(now), 2 * self.floor)
        if self.ceiling <= 0 and not self.slowed:
            self._target = current
        self.limiter.rate = max(self.floor, current / 2)
        self._last_cut = self._last_step = now
        self.cuts += 1
        return True

    def _recover(self, now: float) -> None:
        if not self.slowed or now - self._last_step < 1.0:
            return
        self._last_step = now
        goal = self.ceiling if self.ceiling > 0 else self._target
        rate = self.limiter.rate + max(1.0, goal / 20)
        # Back at the goal: the configured rate again (which may be unlimited).
        self.limiter.rate = self.ceiling if rate >= goal else rate


class DomainSchedule:
    """Per-recipient-domain budgets as evenly spaced send slots (GCRA)."""

    def __init__(self, rates: dict[str, float], default: float, *, horizon: float = 2.0) -> None:
        self.rates = {d.lower(): r for d, r in rates.items()}
        self.default = default
        self.horizon = horizon  # how far ahead a slot may be and still wait in memory
        self._next: dict[str, float] = {}
        self._deferred: dict[str, float] = {}

    def rate_for(self, domain: str) -> float:
        """Return the domain's limit in messages/s (0 = none)."""
        return self.rates.get(domain, self.default)

    def reserve(self, address: str, now: float) -> tuple[float, float]:
        """Return (slot, 0) to send at `slot`, or (0, delay) to defer the row by `delay` seconds.

        Deferred rows of one domain get delays spaced at its rate, so they come back one
        slot at a time instead of all together.
        """
        domain = address.rpartition("@")[2].lower()
        rate = self.rate_for(domain)
        if rate <= 0:
            return now, 0.0
        slot = max(now, self._next.get(domain, now))
        if slot - now <= self.horizon:
            self._next[domain] = slot + 1.0 / rate
            return slot, 0.0
        # A deferred row reserves nothing now (its later claim does); the delays of one batch
        # are spaced at the domain's rate so the rows come back a slot at a time.
        later = max(slot, self._deferred.get(domain, slot)) + 1.0 / rate
        self._deferred[domain] = later
        return 0.0, later - now

    def forget_deferrals(self) -> None:
        """Reset deferral spacing (called once per claimed batch)."""
        self._deferred.clear()


class ErrorWatch:
    """The share of errors among each send's recent results, to pause a send that goes bad."""

    def __init__(self, threshold: float, window: int) -> None:
        self.threshold = threshold
        self.window = window
        self._recent: dict[int, deque[bool]] = {}
        self._errors: dict[int, int] = {}

    def note(self, issue_id: int, error: bool) -> float | None:
        """Record one result; return the error share when it passes the threshold."""
        recent = self._recent.get(issue_id)
        if recent is None:  # (not setdefault: that builds a deque per message to throw away)
            recent = self._recent[issue_id] = deque(maxlen=self.window)
        if len(recent) == self.window:
            self._errors[issue_id] -= recent[0]
        recent.append(error)
        errors = self._errors[issue_id] = self._errors.get(issue_id, 0) + error
        if len(recent) < self.window or errors < self.threshold * self.window:
            return None
        self.forget(issue_id)  # one pause per bad stretch
        return errors / self.window

    def forget(self, issue_id: int) -> None:
        """Drop an issue's history (it was paused or resumed)."""
        self._recent.pop(issue_id, None)
        self._errors.pop(issue_id, None)
