"""Relay: one relay of the pool as this process knows it (rest, failures, quota, rate slots)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import UTC, date, datetime, timedelta

from app.relay_config import RelaySpec
from app.sends.smtp.pool import SMTPMailer

__all__ = ["Relay"]


def _now() -> datetime:
    return datetime.now(UTC)


def _wall(at: float) -> datetime:
    """Turn a monotonic time into a UTC datetime."""
    return datetime.now(UTC) + timedelta(seconds=at - time.monotonic())


class Relay:
    """One relay's mailer and what this process knows of it."""

    def __init__(self, spec: RelaySpec, mailer: SMTPMailer, today: date) -> None:
        self.spec = spec
        self.mailer = mailer
        self.name = spec.name
        self.current = 0.0  # smooth weighted round robin
        self.rested_until = 0.0  # monotonic
        self.failures = 0  # in a row
        self.last_error: str | None = None
        self.over_day: date | None = None  # the UTC day its quota ran out
        self.quota_day = today
        self.left = 0  # quota reserved in the database and not used yet
        self.counted = 0  # messages of relays without a quota, not yet added to the day
        self.slots: deque[float] = deque()  # rate slots reserved, epoch seconds
        self.lock = asyncio.Lock()  # one reservation at a time

    def usable(self, now: float, today: date) -> bool:
        """Tell whether the relay may take a message now."""
        return now >= self.rested_until and self.over_day != today

    def why_not(self, now: float, today: date) -> str:
        """Say in a few words why the relay takes no message now."""
        if self.over_day == today:
            return f"daily quota of {self.spec.daily} used, resets at 00:00 UTC"
        if now < self.rested_until:
            until = _wall(self.rested_until).strftime("%H:%M:%S")
            return f"resting until {until} UTC after: {self.last_error or 'a failure'}"
        return f"failed just now: {self.last_error or 'unknown'}"
