"""Watches over a send's results that decide when to stop and say why, instead of going on.

RelayWatch: the relay itself is unusable (refused, no STARTTLS, login refused, silent), so
every message fails the same way; the send pauses with that sentence rather than retrying in
silence. BounceBurst: a relay answering `550 5.1.1` to everyone would otherwise suppress the
whole list; one hard-bounce sentence for a fifth of a window is the relay's fault, not the
readers'. Replies are compared by their shape: Gmail and others end each one with a per-message
id (`… 54fdd115b992 - gsmtp`), so addresses, numbers and hex are stripped before comparing.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass

from app.sends.store.sends import RELAY_BURST_PAUSE

_ADDRESS = re.compile(r"\S+@\S+")
# Whatever differs from one message to the next: any word with a digit (ids, queue numbers,
# timestamps, reply codes) and long hex runs without one.
_VARYING = re.compile(r"\S*\d\S*|\b[0-9a-f]{8,}\b", re.IGNORECASE)
_STATUS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")


def reply_shape(reply: str) -> str:
    """Return a reply with what varies per message stripped: equal shapes are one sentence."""
    status = _STATUS.search(reply)
    words = _VARYING.sub("#", _ADDRESS.sub("<address>", reply)).split()
    return f"{status.group() if status else ''} {' '.join(words)}"[:200]


_LOG_EVERY = 30.0  # seconds between two log lines about the same relay problem


class RelayWatch:
    """Count relay-level failures in a row; past `threshold` the relay is unusable."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.streak = 0
        self._logged: dict[str, float] = {}

    def note(self, alert: str | None) -> bool:
        """Record one result's alert (None: the relay worked); True when it is time to pause."""
        if alert is None:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak >= self.threshold:
            self.streak = 0
            return True
        return False

    def should_log(self, alert: str, now: float) -> bool:
        """Tell whether this sentence was not logged in the last half minute."""
        if now - self._logged.get(alert, -_LOG_EVERY) < _LOG_EVERY:
            return False
        self._logged[alert] = now
        return True


@dataclass(frozen=True)
class Burst:
    """A relay refusing many readers in the same words: how many, over how many domains."""

    count: int
    domains: int
    reply: str

    def reason(self) -> str:
        """Say what happened and what was done, for pause_reason."""
        across = f"{self.domains} domain{'s' if self.domains != 1 else ''}"
        return (
            f"{RELAY_BURST_PAUSE} {self.count} readers across {across} with "
            f"the same reply ({self.reply}). That is the relay's fault, not the readers': "
            "nobody was suppressed and those deliveries are queued again. Fix the relay, "
            "then resume."
        )[:500]


class BounceBurst:
    """Per send, the last `window` results: too many 5.1.x replies of one shape is a burst."""

    def __init__(self, window: int = 50, threshold: int = 10) -> None:
        self.window = window
        self.threshold = threshold
        # Per send: (domain, shape, the reply as said) for each hard bounce, None otherwise.
        self._recent: dict[int, deque[tuple[str, str, str] | None]] = {}

    def note(self, issue_id: int, email: str, reply: str, hard: bool) -> Burst | None:
        """Record one result of a send; return the burst when it is one."""
        recent = self._recent.get(issue_id)
        if recent is None:  # (not setdefault: that builds a deque per message to throw away)
            recent = self._recent[issue_id] = deque(maxlen=self.window)
        if not hard:
            recent.append(None)
            return None
        domain = email.rpartition("@")[2].lower()
        said = " ".join(_ADDRESS.sub("<address>", reply).split())[:160]
        recent.append((domain, reply_shape(reply), said))
        hard_ones = [r for r in recent if r is not None]
        if len(hard_ones) < self.threshold:
            return None
        shape, same = Counter(r[1] for r in hard_ones).most_common(1)[0]
        # A real list bounces a few percent, each in its own words: one sentence for a fifth
        # of a window is the relay speaking, not the mailboxes. No number of domains is asked
        # for: a list may live on one or two, and pausing (undone by a resume) loses nothing.
        if same < 0.8 * len(hard_ones):
            return None
        domains = {r[0] for r in hard_ones if r[1] == shape}
        example = next(r[2] for r in hard_ones if r[1] == shape)
        self.forget(issue_id)
        return Burst(same, len(domains), example)

    def forget(self, issue_id: int) -> None:
        """Drop a send's history (it was paused)."""
        self._recent.pop(issue_id, None)
