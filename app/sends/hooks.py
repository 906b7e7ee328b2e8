"""What the send core tells the layers above it, as callables it is handed (issue 18, item 3).

The core never imports the domains above it (suppressions, webhooks, housekeeping, issues) nor
metrics: the store returns facts (readers bounced, sends finished) and the worker hands them to
these hooks, inside the transaction that produced them where that matters (a hard-bounced
reader is suppressed in the transaction that records the bounce; issue.sent is queued in the
one that finishes the send). app/delivery.py wires the real ones; the defaults do nothing, for
tests and benchmarks that drive a bare worker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.sends.ports import (
    Observe,
    ObserveCommit,
    ObserveWait,
    unobserved,
    unobserved_commit,
    unobserved_wait,
)
from app.sends.store.rows import Bounced
from app.sends.store.sends import SendGate

# Act on hard bounces just recorded (suppress the readers, tell webhooks), in that transaction.
OnBounced = Callable[[Session, Sequence[Bounced], datetime], None]
# Undo what bounces of one send caused (a relay refused everyone alike); return how many.
OnBouncesUndone = Callable[[Session, int, datetime], int]
# Called with the perf_counter() a claim began at and how many rows it took (metrics).
ObserveClaim = Callable[[float, int], None]
# Act on sends just finished (issue.sent), in the transaction that finished them.
OnFinished = Callable[[Session, Sequence[int]], None]
# Periodic tidying (unconfirmed sign-ups, old counters); return counts for the log line.
Tidy = Callable[[Session, datetime], Mapping[str, int]]


def _ignore_bounces(session: Session, bounced: Sequence[Bounced], now: datetime) -> None:
    """Do nothing with bounces."""


def unobserved_claim(started: float, claimed: int) -> None:
    """Record nothing (no metrics wired in)."""


def _nothing_undone(session: Session, issue_id: int, now: datetime) -> int:
    """Undo nothing."""
    return 0


def _ignore_finished(session: Session, issue_ids: Sequence[int]) -> None:
    """Do nothing with finished sends."""


def _no_tidying(session: Session, now: datetime) -> Mapping[str, int]:
    """Tidy nothing."""
    return {}


@dataclass(frozen=True)
class SendHooks:
    """Callables the worker is handed: the pre-send check, what to do with facts, metrics."""

    # Why a scheduled issue must not start now (the pre-send check), or None.
    gate: SendGate | None = None
    bounced: OnBounced = _ignore_bounces
    bounces_undone: OnBouncesUndone = _nothing_undone
    finished: OnFinished = _ignore_finished
    tidy: Tidy = _no_tidying
    observe_smtp: Observe = unobserved
    observe_claim: ObserveClaim = unobserved_claim
    observe_commit: ObserveCommit = unobserved_commit
    observe_wait: ObserveWait = unobserved_wait
