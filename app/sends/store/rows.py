"""The ledger's shared pieces: its tables, the rows handed to and back from a worker."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import cast as typed

from sqlalchemy import Table
from sqlalchemy.orm import Session

from app.models import Delivery, OutboxMessage
from app.sends.policy import Outcome

D = typed(Table, Delivery.__table__)
O = typed(Table, OutboxMessage.__table__)  # noqa: E741 - mirrors D


@dataclass(frozen=True)
class Claim:
    """One delivery handed to this worker: everything needed to send it, no ORM object."""

    delivery_id: int
    issue_id: int
    subscriber_id: int
    email: str
    attempts: int
    message_id: str
    token_nonce: str  # the subscriber's list-token nonce, filled into their links
    # Read with the claim (one query per batch) for the issue's merge tags.
    name: str = ""
    attributes: Mapping[str, Any] | None = None
    # The reader's attributes as stored (JSON text), decoded only for an issue that has merge
    # tags: decoding every reader's on every claim was 5-7 us a message for nothing.
    attributes_json: str | None = None

    def reader_attributes(self) -> Mapping[str, Any] | None:
        """Return the reader's attributes, decoding the stored JSON only now."""
        if self.attributes is not None or not self.attributes_json:
            return self.attributes
        loaded = json.loads(self.attributes_json)
        return loaded if isinstance(loaded, dict) else None


@dataclass(frozen=True)
class Result:
    """What happened to one claimed row (a delivery or an outbox message)."""

    row_id: int
    attempts: int
    outcome: Outcome
    reply: str
    suppress: bool = False


@dataclass(frozen=True)
class Bounced:
    """A fact for the layers above: readers a relay refused (5.1.x) during one issue's send.

    Their deliveries are recorded `failed`; suppressing them is for the caller, in the same
    transaction (the worker's hooks, app/delivery.py).
    """

    issue_id: int
    subscriber_ids: tuple[int, ...]


def is_postgres(session: Session) -> bool:
    """Tell whether the session talks to PostgreSQL."""
    return session.get_bind().dialect.name == "postgresql"
