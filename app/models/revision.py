"""Revisions of an issue's text: autosaves, saves, and text kept when a session ended."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class IssueRevision(Base):
    """The Markdown of an issue at one moment; issue_id is None for a draft not created yet."""

    __tablename__ = "issue_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), default=None
    )
    editor_id: Mapped[int | None] = mapped_column(
        ForeignKey("editors.id", ondelete="SET NULL"), default=None
    )
    # autosave | save | restore | stash (kept when a session ended before a save)
    source: Mapped[str] = mapped_column(String(16))
    markdown: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_issue_revisions_issue_id_id", "issue_id", "id"),)
