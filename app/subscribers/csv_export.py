"""Export of subscribers as CSV, in the columns the import reads back.

`email,name,status,timezone,created_at,confirmed_at,tags,newsletters,attr.<name>…`: tags and
newsletter slugs separated by `;`, one `attr.` column per attribute any reader has. Every cell
goes through app.csvsafe (no spreadsheet formula runs), and the import restores it, so an
export imported on a fresh install gives the same tags, newsletters and attributes.
"""

from __future__ import annotations

import io

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audience import csv_columns
from app.csvsafe import csv_writer
from app.models import Subscriber

PAGE = 1000  # readers per read: their tags and newsletters come in one query each

COLUMNS = (
    "email",
    "name",
    "status",
    "timezone",
    "created_at",
    "confirmed_at",
    "tags",
    "newsletters",
)


def attribute_names(session: Session) -> list[str]:
    """Return every attribute name any reader has, sorted (one column each)."""
    names: set[str] = set()
    stmt = select(Subscriber.attributes).execution_options(yield_per=PAGE)
    for attributes in session.scalars(stmt):
        names.update(attributes or {})
    return sorted(names)


def export_csv(session: Session) -> str:
    """Return every subscriber as CSV, with tags, newsletters and attributes."""
    names = attribute_names(session)
    buf = io.StringIO()
    writer = csv_writer(buf)
    writer.writerow((*COLUMNS, *(f"{csv_columns.ATTR_PREFIX}{n}" for n in names)))
    after = 0
    while True:
        page = list(
            session.scalars(
                select(Subscriber).where(Subscriber.id > after).order_by(Subscriber.id).limit(PAGE)
            )
        )
        if not page:
            break
        ids = [row.id for row in page]
        tags = csv_columns.tags_by_reader(session, ids)
        slugs = csv_columns.active_slugs(session, ids)
        for row in page:
            attributes = row.attributes or {}
            writer.writerow(
                (
                    row.email,
                    row.name,
                    row.status,
                    row.timezone,
                    row.created_at.isoformat(),
                    row.confirmed_at.isoformat() if row.confirmed_at else "",
                    csv_columns.SEPARATOR.join(tags.get(row.id, [])),
                    csv_columns.SEPARATOR.join(slugs.get(row.id, [])),
                    *(csv_columns.cell_of(attributes.get(n)) for n in names),
                )
            )
        after = ids[-1]
        for row in page:  # flat memory however many readers
            session.expunge(row)
    return buf.getvalue()
