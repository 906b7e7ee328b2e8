"""Subject A/B tests: the subjects, the sample's carrier issues and the decision."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class AbTest(Base):
    """An issue sent first to a sample under several subjects, then to the rest with the best."""

    __tablename__ = "ab_tests"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    subjects: Mapped[list[str]] = mapped_column(JSON)
    # One hidden carrier issue per subject, in the order of `subjects`.
    carriers: Mapped[list[int]] = mapped_column(JSON)
    sample_percent: Mapped[int]
    metric: Mapped[str] = mapped_column(String(16), default="clicks")
    decide_at: Mapped[datetime]
    winner: Mapped[int | None] = mapped_column(default=None)  # an index into subjects
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set while the test is paused (undecided): the sample's readers cannot click what they
    # have not been sent, so the resume moves decide_at on by the pause's length.
    paused_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_ab_tests_decide", "winner", "decide_at"),)
