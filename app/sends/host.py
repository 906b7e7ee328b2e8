"""What a delivery stream needs from the worker that runs it, named so neither imports the other."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from app.config import Settings
from app.sends.compose import PreparedMessage
from app.sends.dkim import DkimSigner
from app.sends.smtp.mailer import Mailer
from app.sends.store.rows import Claim, Result
from app.sends.throttle import AdaptiveRate, DomainSchedule, ErrorWatch, RateLimiter
from app.sends.watch import BounceBurst, RelayWatch

T = TypeVar("T")


class StreamHost(Protocol):
    """What a stream needs from the worker that runs it (the worker is one; tests may be)."""

    settings: Settings
    mailer: Mailer
    owner: str
    domain: str
    signer: DkimSigner | None
    limiter: RateLimiter
    adaptive: AdaptiveRate
    domains: DomainSchedule
    errors: ErrorWatch
    relay: RelayWatch
    bursts: BounceBurst
    clock: Callable[[], datetime]

    def claim_limit(self) -> int:
        """Return how many rows one claim may take."""
        ...

    async def db(self, fn: Callable[[Session], T]) -> T:
        """Run fn(session) in one transaction on a thread."""
        ...

    async def message_for(self, issue_id: int) -> PreparedMessage | Exception:
        """Return the issue's prepared message, or why it failed."""
        ...

    def build(self, claim: Claim, date: str) -> bytes:
        """Return one recipient's wire bytes."""
        ...

    def envelope_sender(self, delivery_id: int) -> str:
        """Return MAIL FROM for a delivery."""
        ...

    def date_header(self) -> str:
        """Return the Date header for messages built now."""
        ...

    async def commit(
        self, results: list[Result], handed: list[int], undo_bounces: set[int] | frozenset[int]
    ) -> set[int]:
        """Record results and hand over the next group; return the ids actually handed."""
        ...

    async def renew(self, ids: list[int]) -> None:
        """Extend the leases of rows in hand."""
        ...

    async def pause(self, issue_id: int, reason: str) -> bool:
        """Pause a send, saying why."""
        ...

    async def note_alert(self, issue_id: int, text: str) -> None:
        """Show a relay problem on the send."""
        ...
