"""Watches over a send's results that decide when to stop and say why, instead of going on.

RelayWatch: the relay itself is unusable (refused, no STARTTLS, login refused, silent), so
every message fails the same way; the send pauses with that sentence rather than retrying in
silence. BounceBurst: a relay answering `550 5.1.1` to everyone would otherwise suppress the
whole list; identical hard bounces across many domains are the relay's fault, not the readers'.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass

_ADDRESS = re.compile(r"\S+@\S+")
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
        return (
            f"paused: the relay refused {self.count} readers across {self.domains} domains with "
            f"the same reply ({self.reply}). That is the relay's fault, not the readers': "
            "nobody was suppressed and those deliveries are queued again. Fix the relay, "
            "then resume."
        )[:500]


class BounceBurst:
    """Per send, the last `window` results: too many identical 5.1.x replies is a burst."""

    def __init__(self, window: int = 50, threshold: int = 10, min_domains: int = 3) -> None:
        self.window = window
        self.threshold = threshold
        self.min_domains = min_domains
        self._recent: dict[int, deque[tuple[str, str] | None]] = {}

    def note(self, issue_id: int, email: str, reply: str, hard: bool) -> Burst | None:
        """Record one result of a send; return the burst when it is one."""
        recent = self._recent.setdefault(issue_id, deque(maxlen=self.window))
        domain = email.rpartition("@")[2].lower()
        recent.append((domain, _ADDRESS.sub("<address>", reply)[:120]) if hard else None)
        hard_ones = [r for r in recent if r is not None]
        if len(hard_ones) < self.threshold:
            return None
        reply_text, same = Counter(r for _, r in hard_ones).most_common(1)[0]
        domains = {d for d, r in hard_ones if r == reply_text}
        # A real list bounces a few percent, each in its own words: one sentence for most of
        # a window, across several domains, is the relay speaking, not the mailboxes.
        if same < 0.8 * len(hard_ones) or len(domains) < self.min_domains:
            return None
        self.forget(issue_id)
        return Burst(same, len(domains), reply_text)

    def forget(self, issue_id: int) -> None:
        """Drop a send's history (it was paused)."""
        self._recent.pop(issue_id, None)
