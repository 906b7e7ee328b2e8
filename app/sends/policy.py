"""What can become of one message handed to a relay."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_BACKOFF_SECONDS = 3600.0
# RFC 3463 enhanced status 5.1.x: the address itself is bad (no such user, bad domain).
_HARD_BOUNCE = re.compile(r"^\s*(?:5\d\d[ -])?5\.1\.\d{1,3}\b")


class Outcome(enum.StrEnum):
    """The fate of one send: final (sent, failed), temporary (retry) or unknowable (unknown)."""

    sent = "sent"
    retry = "retry"
    failed = "failed"
    unknown = "unknown"


@dataclass(frozen=True)
class RetryPolicy:
    """How soon a temporary failure is retried, and when it becomes final."""

    backoff_seconds: float = 60.0
    max_attempts: int = 8

    def next_attempt(self, now: datetime, attempts: int) -> datetime:
        """Return when attempt number attempts+1 is due (exponential, capped at an hour)."""
        delay = min(self.backoff_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
        return now + timedelta(seconds=delay)


def is_hard_bounce(reply: str) -> bool:
    """Tell whether an SMTP reply carries a 5.1.x enhanced status (the address is bad)."""
    return bool(_HARD_BOUNCE.match(reply))
