"""The public pages' stamp: one row whose counter moves whenever what a page shows may change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow

STAMP_ID = 1


class PageStamp(Base):
    """The one row (id 1) every process reads to know whether its cached pages still hold.

    Database triggers on `issues` (migration 0017) bump `counter` and `changed_at` in the same
    transaction as any insert, delete or change of a column a public page shows, whoever
    writes it (API, console, worker, CLI, psql). A process whose code, templates or newsletter
    settings differ from `site` bumps it when it starts (app.web.stamp.claim_site).
    NB: a SQLite migration that rebuilds `issues` (batch mode) drops its triggers; such a
    migration must create them again (tests/integration/test_page_cache.py checks they exist).
    """

    __tablename__ = "page_stamps"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    counter: Mapped[int] = mapped_column(default=0)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    site: Mapped[str] = mapped_column(String(64), default="")
