"""Bulk import of `email,name[,timezone,tags,newsletters,attr.<name>…]` CSV, streamed in chunks.

A million rows fit. The audience columns (app.audience.csv_columns): `tags` and `newsletters`
separated by `;`, and one `attr.<name>` column per attribute. A row naming an unknown
newsletter (or a bad tag or attribute) is rejected with its line; the others are imported.
Tags and newsletters are only ever added: an import removes none, and never puts a reader back
on a newsletter they left.

A file is all or nothing: the caller commits once, after the last row, so a bad byte on line
2,004 leaves no row of lines 2..2,003 behind. Each chunk is flushed and then let go of by the
session, so memory stays flat however long the file; `on_chunk` runs after each flush (for
progress; it must not commit). Rows are named by the file line they start on, as an editor
sees it, even when a quoted field spans lines.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.addresses import normalize_email
from app.audience import csv_columns
from app.audience.attributes import merge_attributes
from app.csvsafe import restore
from app.errors import InvalidInput
from app.models import Subscriber, SubscriberStatus, Suppression
from app.subscribers.service import clean_name, clean_timezone
from app.tokens import hash_secret

CHUNK_SIZE = 500
REJECTED_LIMIT = 100


@dataclass
class Rejected:
    """One row that was not imported and why."""

    row: int
    email: str
    reason: str


@dataclass
class Repeated:
    """A row whose address an earlier row of the same file already had: the later one wins."""

    row: int
    email: str
    first_row: int


@dataclass
class ImportSummary:
    """What an import did; `rejected` keeps the first REJECTED_LIMIT rows, the count has all."""

    imported: int = 0
    updated: int = 0
    skipped_existing: int = 0
    # Rows whose `status` says the reader left (unsubscribed, bounced, complained): kept as
    # such, so an exported list imported elsewhere never mails those who left.
    left: int = 0
    rejected_count: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    rows: int = 0
    repeated_count: int = 0
    repeated: list[Repeated] = field(default_factory=list)
    # Where each address of the file first appeared (only addresses, for this one import).
    _first_row: dict[str, int] = field(default_factory=dict, repr=False)

    def repeat_of(self, row: int, email: str) -> int | None:
        """Return the earlier row with this address (noting the repeat), or None for a first."""
        first = self._first_row.setdefault(email, row)
        if first == row:
            return None
        self.repeated_count += 1
        if len(self.repeated) < REJECTED_LIMIT:
            self.repeated.append(Repeated(row=row, email=email, first_row=first))
        return first

    def reject(self, row: int, email: str, reason: str) -> None:
        """Count a rejected row, keeping its detail while the list is short."""
        self.rejected_count += 1
        if len(self.rejected) < REJECTED_LIMIT:
            # Cut the echoed value: a garbage cell should not bloat the summary.
            self.rejected.append(Rejected(row=row, email=email[:320], reason=reason))

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape the API and the CLI print."""
        return {
            "imported": self.imported,
            "updated": self.updated,
            "skipped_existing": self.skipped_existing,
            "left": self.left,
            "rejected_count": self.rejected_count,
            "rejected": [
                {"row": r.row, "email": r.email, "reason": r.reason} for r in self.rejected
            ],
            "rows": self.rows,
            "repeated_count": self.repeated_count,
            "repeated": [
                {"row": r.row, "email": r.email, "first_row": r.first_row} for r in self.repeated
            ],
        }


@dataclass
class _Row:
    number: int
    raw_email: str
    email: str
    name: str
    timezone: str | None  # None: the cell was empty or there is no such column
    left: SubscriberStatus | None = None  # a `status` cell saying the reader left
    tags: list[str] = field(default_factory=list)
    newsletters: list[int] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def audience(self) -> bool:
        """Tell whether the row carries tags, newsletters or attributes."""
        return bool(self.tags or self.newsletters or self.attributes)


def _lines(file: IO[bytes] | IO[str]) -> Iterator[str]:
    """Yield the file's lines as text; a byte that is not UTF-8 or a NUL names its own line."""
    binary = isinstance(file.read(0), bytes)
    for number, raw in enumerate(file, start=1):
        if binary:
            try:
                # Decoded line by line, not in read-ahead blocks, so an error names its line.
                line = cast(bytes, raw).decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"Line {number}: the file is not UTF-8 text; save it as CSV UTF-8."
                ) from None
        else:
            line = cast(str, raw)
        if "\x00" in line:
            raise InvalidInput(
                f"Line {number}: the file contains a NUL byte; it is not a text CSV file."
            )
        yield line


def _records(file: IO[bytes] | IO[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield (line the record starts on, cells); line 1 is the header, as in a spreadsheet."""
    reader = csv.reader(_lines(file))
    start = 1
    try:
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidInput(f"Line {start}: the CSV cannot be read ({exc}).") from None


@dataclass(frozen=True)
class _Columns:
    email: int
    name: int | None
    timezone: int | None
    tags: int | None = None
    newsletters: int | None = None
    attributes: dict[str, int] = field(default_factory=dict)  # attribute name: column
    status: int | None = None


# A `status` cell (as the export writes it): these import as readers; the rest as having left.
_STAYING = ("", SubscriberStatus.active, SubscriberStatus.pending)
_LEFT = (SubscriberStatus.unsubscribed, SubscriberStatus.bounced, SubscriberStatus.complained)


def _left(cell: str) -> SubscriberStatus | None:
    """Read a `status` cell: None for a reader to import, else how they left; else refuse."""
    value = cell.strip().lower()
    if value in _STAYING:
        return None
    for status in _LEFT:
        if value == status:
            return status
    raise InvalidInput(
        f"status {cell.strip()[:40]!r} is not one of active, pending, " + ", ".join(_LEFT)
    )


def _cell(cells: list[str], col: int | None) -> str:
    # restore: a file we exported carries '= for =, and imports again as it was.
    return restore(cells[col]) if col is not None and col < len(cells) else ""


def _header(file: IO[bytes] | IO[str]) -> tuple[Iterator[tuple[int, list[str]]], _Columns]:
    records = _records(file)
    try:
        _, first = next(records)
    except StopIteration:
        raise InvalidInput("The file is empty; it needs a header row `email,name`.") from None
    # A BOM survives when a text stream was handed in; strip it here as well.
    columns = [c.strip().lstrip(codecs.BOM_UTF8.decode()).lower() for c in first]
    if "email" not in columns:
        raise InvalidInput("The first row must be a header naming the columns, e.g. `email,name`.")

    def col(name: str) -> int | None:
        return columns.index(name) if name in columns else None

    # Attribute names keep their case (`attr.Plan` is not `attr.plan`).
    attributes: dict[str, int] = {}
    for index, header in enumerate(first):
        name = csv_columns.attribute_column(header.strip().lstrip(codecs.BOM_UTF8.decode()))
        if name is not None:
            attributes.setdefault(name, index)
    return records, _Columns(
        columns.index("email"),
        col("name"),
        col("timezone"),
        col("tags"),
        col("newsletters"),
        attributes,
        col("status"),
    )


def _audience(cells: list[str], cols: _Columns, slugs: dict[str, int]) -> dict[str, Any]:
    """Return a row's tags, newsletters and attributes, or raise InvalidInput saying why."""
    found: dict[str, Any] = {}
    if cols.tags is not None:
        found["tags"] = csv_columns.parse_tags(_cell(cells, cols.tags))
    if cols.newsletters is not None:
        found["newsletters"] = csv_columns.parse_newsletters(_cell(cells, cols.newsletters), slugs)
    if cols.attributes:
        found["attributes"] = csv_columns.parse_attributes(
            {name: _cell(cells, i) for name, i in cols.attributes.items()}
        )
    return found


def import_csv(
    session: Session,
    file: IO[bytes] | IO[str],
    *,
    now: datetime,
    chunk_size: int = CHUNK_SIZE,
    on_chunk: Callable[[], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    default_timezone: str = "UTC",
) -> ImportSummary:
    """Import subscribers as active (consent "import"); return counts and rejected rows.

    `on_chunk` runs after each flushed chunk (pass `session.commit` to commit in chunks);
    `on_progress` receives the number of data rows processed so far.
    """
    records, cols = _header(file)
    slugs = csv_columns.newsletter_slugs(session) if cols.newsletters is not None else {}
    summary = ImportSummary()
    chunk: list[_Row] = []
    for number, cells in records:
        if not any(c.strip() for c in cells):
            continue  # blank lines are noise, not rejections
        summary.rows += 1
        raw_email = _cell(cells, cols.email).strip()
        try:
            email = normalize_email(raw_email)
            name = clean_name(_cell(cells, cols.name))
            zone = clean_timezone(_cell(cells, cols.timezone))
            audience = _audience(cells, cols, slugs)
            left = _left(_cell(cells, cols.status))
        except InvalidInput as exc:
            summary.reject(number, raw_email, exc.message)
            continue
        chunk.append(_Row(number, raw_email, email, name, zone, left, **audience))
        if len(chunk) >= chunk_size:
            _apply_chunk(session, chunk, summary, now, default_timezone)
            chunk = []
            _after_chunk(summary, on_chunk, on_progress)
    if chunk:
        _apply_chunk(session, chunk, summary, now, default_timezone)
    _after_chunk(summary, on_chunk, on_progress)
    return summary


def _after_chunk(
    summary: ImportSummary,
    on_chunk: Callable[[], None] | None,
    on_progress: Callable[[int], None] | None,
) -> None:
    if on_chunk is not None:
        on_chunk()
    if on_progress is not None:
        on_progress(summary.rows)


def _new_reader(r: _Row, status: SubscriberStatus, now: datetime, default_tz: str) -> Subscriber:
    """Return a reader of this file's row, new to the list (consent "import")."""
    return Subscriber(
        email=r.email,
        email_hash=hash_secret(r.email),
        name=r.name,
        status=status,
        consent_source="import",
        created_at=now,
        status_changed_at=now,
        timezone=r.timezone or default_tz,
        attributes=dict(r.attributes),
    )


def _import_left(
    session: Session,
    existing: dict[str, Subscriber],
    row: Subscriber | None,
    r: _Row,
    summary: ImportSummary,
    now: datetime,
    default_tz: str,
) -> None:
    """Keep a reader the file says left as having left: never a reason to mail them."""
    assert r.left is not None
    summary.repeat_of(r.number, r.email)
    summary.left += 1
    if row is None:
        row = _new_reader(r, r.left, now, default_tz)
        row.unsubscribed_at = now
        session.add(row)
        existing[r.email] = row
    elif row.status in (SubscriberStatus.pending, SubscriberStatus.active):
        # The file (another tool's export, say) knows they left: that wins over mailing them.
        row.status = r.left
        row.status_changed_at = now
        row.unsubscribed_at = now


def _apply_chunk(
    session: Session, chunk: list[_Row], summary: ImportSummary, now: datetime, default_tz: str
) -> None:
    """Insert or update one chunk with two lookups instead of two per row."""
    emails = {r.email for r in chunk}
    hashes = {hash_secret(e): e for e in emails}
    suppressed = set(
        session.scalars(select(Suppression.email_hash).where(Suppression.email_hash.in_(hashes)))
    )
    existing = {
        s.email: s for s in session.scalars(select(Subscriber).where(Subscriber.email.in_(emails)))
    }
    touched: list[tuple[Subscriber, _Row, bool]] = []  # (reader, row, counted as skipped)
    fresh: list[Subscriber] = []
    for r in chunk:
        if hash_secret(r.email) in suppressed:
            summary.reject(r.number, r.raw_email, "suppressed")
            continue
        row = existing.get(r.email)
        if r.left is not None:
            _import_left(session, existing, row, r, summary, now, default_tz)
            continue
        if row is not None and row.status in (SubscriberStatus.pending, SubscriberStatus.active):
            try:  # bounded as on PATCH: a reader's attributes and the file's together
                attributes = merge_attributes(row.attributes or {}, r.attributes)
            except InvalidInput as exc:
                summary.reject(r.number, r.raw_email, exc.message)
                continue
        # The same address again in this file is named in the summary; it goes through the
        # branches below like any row, so the last row's name and time zone win.
        summary.repeat_of(r.number, r.email)
        if row is None:
            row = _new_reader(r, SubscriberStatus.active, now, default_tz)
            row.confirmed_at = now
            session.add(row)
            existing[r.email] = row  # a repeat later in the file counts as existing
            fresh.append(row)
            touched.append((row, r, False))
            summary.imported += 1
        elif row.status == SubscriberStatus.pending:
            # The editor vouches for consent by importing; finish the half-done sign-up.
            row.status = SubscriberStatus.active
            row.status_changed_at = now
            row.confirmed_at = now
            row.consent_source = "import"
            row.name = r.name or row.name
            row.timezone = r.timezone or row.timezone
            row.attributes = attributes
            touched.append((row, r, False))
            summary.updated += 1
        elif row.status == SubscriberStatus.active:
            changed = _changes(row, r) or attributes != (row.attributes or {})
            row.name = r.name or row.name
            row.timezone = r.timezone or row.timezone
            row.attributes = attributes
            touched.append((row, r, not changed))
            if changed:
                summary.updated += 1
            else:
                summary.skipped_existing += 1
        else:
            # Never resubscribe someone who left, bounced or complained by importing them.
            summary.skipped_existing += 1
    session.flush()
    _apply_audience(session, touched, {row.id for row in fresh}, summary, now)
    # Written to the transaction: the session need not hold a million objects until commit.
    for row in existing.values():
        session.expunge(row)


def _apply_audience(
    session: Session,
    touched: list[tuple[Subscriber, _Row, bool]],
    fresh: set[int],
    summary: ImportSummary,
    now: datetime,
) -> None:
    """Add the chunk's tags and newsletters (after the flush: new readers have ids now)."""
    tags: dict[int, list[str]] = {}
    newsletters: dict[int, list[int]] = {}
    for row, r, _ in touched:
        if r.tags:
            tags.setdefault(row.id, []).extend(r.tags)
        if r.newsletters:
            newsletters.setdefault(row.id, []).extend(r.newsletters)
    changed = csv_columns.add_tags(session, tags, now)
    changed |= csv_columns.join_newsletters(session, newsletters, now, fresh=fresh)
    # An active reader whose only news was a tag or a newsletter was updated after all.
    moved = len({row.id for row, _, skipped in touched if skipped} & changed)
    summary.skipped_existing -= moved
    summary.updated += moved


def _changes(row: Subscriber, r: _Row) -> bool:
    """Tell whether a row of the file changes an active subscriber's name or time zone."""
    return bool(r.name and r.name != row.name) or bool(r.timezone and r.timezone != row.timezone)
