"""Sequences (welcome series, drips): their steps and the readers walking through them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Sequence(Base):
    """A series of issues sent to each reader at set times after a trigger."""

    __tablename__ = "sequences"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # "confirmed", or "tag:<tag>" (the reader gets the tag).
    trigger: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active or paused
    backfill: Mapped[bool] = mapped_column(default=False)
    # Superseded by newsletter_id (migration 0025): a slug can be renamed, an id cannot.
    newsletter: Mapped[str | None] = mapped_column(String(120), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The newsletter whose readers it follows (1 is the default one); no foreign key, as
    # issues.newsletter_id.
    newsletter_id: Mapped[int] = mapped_column(default=1, server_default="1")
    # "welcome" for a newsletter's built-in welcome email; None for an editor's sequence.
    builtin: Mapped[str | None] = mapped_column(String(16), default=None)

    __table_args__ = (Index("ux_sequences_builtin", "newsletter_id", "builtin", unique=True),)


class SequenceStep(Base):
    """One version of a step: its template and the carrier issue whose ledger rows send it.

    Editing a step's content makes a new version (a new carrier) with the same `key`; the old
    one stays so that readers who already had the step keep their row there, and stats count
    every version of a step. Moving a step changes its position, not its key.
    """

    __tablename__ = "sequence_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"))
    position: Mapped[int]
    template_issue_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="SET NULL"), default=None
    )
    template_version: Mapped[int] = mapped_column(default=1)
    carrier_issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    after: Mapped[str] = mapped_column(String(40))
    at: Mapped[str | None] = mapped_column(String(5), default=None)
    current: Mapped[bool] = mapped_column(default=True)
    # The step's identity across versions and moves (unique within its sequence): readers'
    # progress names it, so a reorder or an insertion never makes a step look new to them.
    key: Mapped[str] = mapped_column(String(16))

    __table_args__ = (Index("ix_sequence_steps_sequence_id", "sequence_id", "position"),)


class SequenceReader(Base):
    """A reader in a sequence: when they matched, which step is next and when it is due."""

    __tablename__ = "sequence_readers"

    id: Mapped[int] = mapped_column(primary_key=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    triggered_at: Mapped[datetime]
    # The position of their next step in the current order (what stats show). What they are
    # done with is `sequence_reader_steps`, by step key: an edit renumbers, keys stay.
    next_step: Mapped[int] = mapped_column(default=0)
    # When the scheduler looks at them next; None once the reader finished or left.
    next_due_at: Mapped[datetime | None] = mapped_column(default=None)
    # The carrier of the step sent last: the next waits until that row is no longer open.
    last_carrier_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="SET NULL"), default=None
    )

    __table_args__ = (
        UniqueConstraint("sequence_id", "subscriber_id"),
        Index("ix_sequence_readers_due", "sequence_id", "next_due_at"),
    )


class SequenceReaderStep(Base):
    """A step a reader is done with: queued to them, or passed over (added behind their place).

    The primary key is the guard that a reader never gets one step twice, whatever edits
    reorder, insert or delete around it: the scheduler queues a step only in the transaction
    that inserts this row.
    """

    __tablename__ = "sequence_reader_steps"

    reader_id: Mapped[int] = mapped_column(
        ForeignKey("sequence_readers.id", ondelete="CASCADE"), primary_key=True
    )
    step_key: Mapped[str] = mapped_column(String(16), primary_key=True)
    # True: an edit added the step at a place the reader had already passed; never sent.
    skipped: Mapped[bool] = mapped_column(default=False)
