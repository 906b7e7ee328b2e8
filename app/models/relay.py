"""Relays shared by every worker: each one's count per UTC day, and its state (rested, why)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class RelayUsage(Base):
    """Messages counted against a relay's daily quota on one UTC day (blocks reserved included)."""

    __tablename__ = "relay_usage"

    relay: Mapped[str] = mapped_column(String(60), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class RelayState(Base):
    """What the workers know of one relay: rested until when, why, and its shared rate slots."""

    __tablename__ = "relay_state"

    relay: Mapped[str] = mapped_column(String(60), primary_key=True)
    rested_until: Mapped[datetime | None] = mapped_column(default=None)
    failures: Mapped[int] = mapped_column(default=0)  # in a row; the rest doubles with each
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(default=None)
    # The relay's rate across workers (GCRA): the next free send slot, epoch seconds.
    next_slot: Mapped[float] = mapped_column(default=0.0)
