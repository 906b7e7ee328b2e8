"""Newsletter issues."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class IssueStatus(enum.StrEnum):
    """The life of an issue: draft → scheduled → sending (⇄ paused) → sent (or cancelled)."""

    draft = "draft"
    scheduled = "scheduled"
    sending = "sending"
    paused = "paused"  # by an editor or by the worker (error rate); resumes where it stopped
    sent = "sent"
    cancelled = "cancelled"


class Issue(Base):
    """One edition: its subject, its blocks and where its send stands."""

    __tablename__ = "issues"
    # Two requests deleting the row at once both succeed (PostgreSQL lets both try): the
    # second deletes nothing, which is the outcome wanted (issue 17), not a stale-data error.
    __mapper_args__ = {"confirm_deleted_rows": False}  # noqa: RUF012 (read once by the mapper)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    subject: Mapped[str] = mapped_column(String(250))
    preheader: Mapped[str] = mapped_column(String(250), default="")
    blocks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=IssueStatus.draft, index=True)
    send_at: Mapped[datetime | None] = mapped_column(default=None)
    recipients: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    pause_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    # The latest relay-level problem seen while sending (refused, TLS, login, timeout).
    alert: Mapped[str | None] = mapped_column(String(500), default=None)
    alert_at: Mapped[datetime | None] = mapped_column(default=None)
    # A local-time send: each reader gets it at this wall-clock time (HH:MM) on this day
    # (YYYY-MM-DD) in their own zone; its recipients are frozen when the editor sends.
    local_time: Mapped[str | None] = mapped_column(String(5), default=None)
    local_date: Mapped[str | None] = mapped_column(String(10), default=None)
    # Counts edits of the content and schedule (subject, preheader, slug, blocks, send_at):
    # the ETag of GET /issues/{id}, and what an edit and a send start compare-and-set on.
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # The newsletter it belongs to (1 is the default one). No foreign key: SQLite cannot add
    # a REFERENCES column with a non-null default without rebuilding the table.
    newsletter_id: Mapped[int] = mapped_column(default=1, server_default="1", index=True)
    # A send to part of the newsletter: the filter text (a segment's, copied when sent), so
    # a scheduled start freezes the same audience the editor saw counted.
    audience_filter: Mapped[str | None] = mapped_column(Text, default=None)
    # A send kept open by its owner (an automation adds rows over time): the send core never
    # finishes it; it stays `sending` when its rows run out.
    held_open: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Set on an automation's hidden carrier issues ("sequence", "ab"): a copy of an editor's
    # issue that only carries ledger rows; not listed among issues nor in the archive.
    automation: Mapped[str | None] = mapped_column(String(16), default=None)


class FrozenIssue(Base):
    """The content a send sends: copied from the issue when the send starts, never changed.

    One send is one version: the worker renders from this row, not from the live issue, so an
    edit that slips in later (or a worker restart) never splits the readers between two texts.
    """

    __tablename__ = "frozen_issues"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int]
    subject: Mapped[str] = mapped_column(String(250))
    preheader: Mapped[str] = mapped_column(String(250))
    slug: Mapped[str] = mapped_column(String(120))
    blocks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    frozen_at: Mapped[datetime] = mapped_column(default=utcnow)
