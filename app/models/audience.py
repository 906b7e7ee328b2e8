"""The audience beyond one list: tags on readers and saved segments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class SubscriberTag(Base):
    """One tag on one reader (tags are lower-case words, see app.audience.tags)."""

    __tablename__ = "subscriber_tags"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # A segment like `tag:vip` walks this index from the tag to its readers.
    __table_args__ = (Index("ix_subscriber_tags_tag_subscriber", "tag", "subscriber_id"),)


class Segment(Base):
    """A saved filter over the readers (the filter language of app.audience.filter_parse)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    filter: Mapped[str] = mapped_column(Text)
    # The newsletter whose readers it counts (None: every reader, whatever they take).
    newsletter_id: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
