"""What a delivery stream is handed: a message source, a ledger port and the throttles.

Narrow collaborators instead of the worker itself (issue 18, item 4): the stream names here
what it calls, so it imports neither the worker nor the classes that do the work (messages.py,
ledger_port.py), and a test can hand it doubles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.sends.compose import PreparedMessage
from app.sends.dkim import DkimSigner
from app.sends.smtp.mailer import SendResult
from app.sends.store.rows import Claim, Result
from app.sends.throttle import AdaptiveRate, DomainSchedule, ErrorWatch, RateLimiter
from app.sends.watch import BounceBurst, RelayWatch

# Record results and hand rows over in one transaction; return the ids actually handed over.
Commit = Callable[[list[Result], list[int], set[int] | frozenset[int]], Awaitable[set[int]]]
# Called with each SMTP result and the perf_counter() its transaction began at (metrics).
Observe = Callable[[SendResult, float], SendResult]
# Called with each commit's seconds, and with each wait of a connection at the relay's 354
# for its row's hand-over (metrics: the database's share).
ObserveCommit = Callable[[float], None]
ObserveWait = Callable[[float], None]


def unobserved(result: SendResult, started: float) -> SendResult:
    """Hand a result back unrecorded (no metrics wired in)."""
    return result


def unobserved_commit(seconds: float) -> None:
    """Record nothing (no metrics wired in)."""


def unobserved_wait(seconds: float) -> None:
    """Record nothing (no metrics wired in)."""


class MessageSource(Protocol):
    """Where a stream gets each issue's prepared message and each reader's bytes."""

    signer: DkimSigner | None

    async def message_for(self, issue_id: int) -> PreparedMessage | Exception:
        """Return the issue's prepared message, or why it failed."""
        ...

    def build(self, claim: Claim, date: str) -> bytes:
        """Return one recipient's wire bytes."""
        ...

    def relay_for(self, issue_id: int) -> str | None:
        """Return the relay the issue's newsletter names (None: any relay of the pool)."""
        ...

    def envelope_sender(self, delivery_id: int) -> str:
        """Return MAIL FROM for a delivery."""
        ...

    def date_header(self) -> str:
        """Return the Date header for messages built now."""
        ...


class LedgerPort(Protocol):
    """What a stream reads and writes in the ledger, every write fenced by its worker's lease."""

    commit: Commit

    async def claim(self, room: int) -> list[Claim]:
        """Lease up to `room` due deliveries (fewer when the rate or the batch size says so)."""
        ...

    async def defer(self, rows: list[tuple[int, datetime]], why: str) -> None:
        """Give claimed rows back, due again at the given times, without counting an attempt."""
        ...

    async def release(self, ids: list[int]) -> None:
        """Give claimed rows back to the queue at once, uncounted."""
        ...

    async def statuses(self, issue_ids: set[int]) -> list[tuple[int, str]]:
        """Return (id, status) of the given issues."""
        ...

    async def renew(self, ids: list[int]) -> None:
        """Extend the leases of rows in hand."""
        ...

    async def pause(self, issue_id: int, reason: str, undo_bounces: bool = False) -> bool:
        """Pause a send, saying why (undoing a relay burst's bounces in the same step)."""
        ...

    async def note_alert(self, issue_id: int, text: str) -> None:
        """Show a relay problem on the send."""
        ...


@dataclass(frozen=True)
class Throttles:
    """The worker's sending manners and watches, shared by its streams and its outbox."""

    limiter: RateLimiter
    adaptive: AdaptiveRate
    domains: DomainSchedule
    errors: ErrorWatch
    relay: RelayWatch
    bursts: BounceBurst
