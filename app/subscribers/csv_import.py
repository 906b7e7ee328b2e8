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

from collections.abc import Callable
from datetime import datetime
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.addresses import normalize_email
from app.audience import csv_columns
from app.audience.attributes import merge_attributes
from app.audience.newsletters import confirm_pending
from app.errors import InvalidInput
from app.models import Subscriber, SubscriberStatus, Suppression
from app.subscribers.csv_rows import Row, audience_of, cell, left_status, read_header
from app.subscribers.csv_summary import REJECTED_LIMIT, ImportSummary
from app.subscribers.service import clean_name, clean_timezone
from app.tokens import hash_secret

__all__ = ["CHUNK_SIZE", "REJECTED_LIMIT", "ImportSummary", "import_csv"]

CHUNK_SIZE = 500


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
    records, cols = read_header(file)
    slugs = csv_columns.newsletter_slugs(session) if cols.newsletters is not None else {}
    summary = ImportSummary()
    chunk: list[Row] = []
    for number, cells in records:
        if not any(c.strip() for c in cells):
            continue  # blank lines are noise, not rejections
        summary.rows += 1
        raw_email = cell(cells, cols.email).strip()
        try:
            email = normalize_email(raw_email)
            name = clean_name(cell(cells, cols.name))
            zone = clean_timezone(cell(cells, cols.timezone))
            audience = audience_of(cells, cols, slugs)
            left = left_status(cell(cells, cols.status))
        except InvalidInput as exc:
            summary.reject(number, raw_email, exc.message)
            continue
        chunk.append(Row(number, raw_email, email, name, zone, left, **audience))
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


def _new_reader(r: Row, status: SubscriberStatus, now: datetime, default_tz: str) -> Subscriber:
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
    r: Row,
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
    session: Session, chunk: list[Row], summary: ImportSummary, now: datetime, default_tz: str
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
    touched: list[tuple[Subscriber, Row, bool]] = []  # (reader, row, counted as skipped)
    fresh: list[Subscriber] = []
    vouched: list[int] = []  # pending readers this file makes active
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
            vouched.append(row.id)
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
    for subscriber_id in dict.fromkeys(vouched):
        # The newsletters their sign-up asked for start too, as the confirmation would start them.
        confirm_pending(session, subscriber_id, now)
    _apply_audience(session, touched, {row.id for row in fresh}, summary, now)
    # Written to the transaction: the session need not hold a million objects until commit.
    for row in existing.values():
        session.expunge(row)


def _apply_audience(
    session: Session,
    touched: list[tuple[Subscriber, Row, bool]],
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


def _changes(row: Subscriber, r: Row) -> bool:
    """Tell whether a row of the file changes an active subscriber's name or time zone."""
    return bool(r.name and r.name != row.name) or bool(r.timezone and r.timezone != row.timezone)
