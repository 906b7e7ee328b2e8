"""Suppression list decisions for editors (flush only; the caller commits).

Only the SHA-256 of the normalised address is stored. That is deliberate: an erased person's
entry must keep blocking their address without keeping the address, so the export has hashes
and an import accepts either addresses (hashed on the way in) or hashes.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from datetime import datetime
from typing import cast as typed

from sqlalchemy import Table, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.addresses import normalize_email
from app.csvsafe import csv_writer, restore
from app.errors import Conflict, InvalidInput, NotFound
from app.models import Subscriber, SubscriberStatus, Suppression
from app.models.subscriber import suppressed
from app.subscribers.service import parse_cursor
from app.tokens import hash_secret
from app.webhooks import events

PAGE_MAX = 500
REJECTED_LIMIT = 100
IMPORT_MAX_ROWS = 1_000_000
_HASH = re.compile(r"[0-9a-f]{64}")
REASONS = ("manual", "hard_bounce", "soft_bounce", "complaint", "erased")
EXPORT_COLUMNS = ("email_hash", "reason", "source", "created_at")


def list_suppressions(
    session: Session, *, reason: str | None = None, cursor: str | None = None, limit: int = 100
) -> tuple[list[Suppression], str | None]:
    """Return one page of entries in id order and the cursor of the next page (or None)."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit must be between 1 and {PAGE_MAX}.")
    after = parse_cursor(cursor)
    stmt = select(Suppression).order_by(Suppression.id).limit(limit + 1)
    if reason:
        stmt = stmt.where(Suppression.reason == reason)
    if after is not None:
        stmt = stmt.where(Suppression.id > after)
    rows = list(session.scalars(stmt))
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, str(rows[-1].id)
    return rows, None


def suppress_subscriber(
    session: Session,
    subscriber: Subscriber,
    reason: str,
    source: str,
    detail: str,
    now: datetime,
) -> None:
    """Put a reader's address on the list; a complaint marks them complained, a bounce bounced."""
    if not session.scalar(select(suppressed(subscriber.email_hash))):
        try:
            # A savepoint: a concurrent report for the same address must not fail the whole batch.
            with session.begin_nested():
                session.add(
                    Suppression(
                        email_hash=subscriber.email_hash,
                        reason=reason,
                        source=source,
                        detail=detail,
                        created_at=now,
                    )
                )
        except IntegrityError:
            pass
    if reason == "complaint":
        new_status = SubscriberStatus.complained
    elif subscriber.status in (SubscriberStatus.active, SubscriberStatus.pending):
        new_status = SubscriberStatus.bounced
    else:
        return  # an unsubscribed reader stays unsubscribed; the suppression is what matters
    if subscriber.status != new_status:
        subscriber.status = new_status
        subscriber.status_changed_at = now
        events.subscriber_event(session, events.status_event(new_status), subscriber, reason)
    session.flush()


def bounce_detail(issue_id: int) -> str:
    """Return the suppression detail of 5.1.x replies during one issue's send."""
    return f"5.1.x reply during the send of issue {issue_id}"


def suppress_bounced(
    session: Session, subscriber_ids: Iterable[int], now: datetime, detail: str
) -> None:
    """Suppress readers whose address a relay refused with 5.1.x during a send (set-based)."""
    ids = list(subscriber_ids)
    if not ids:
        return
    table = typed(Table, Suppression.__table__)
    source = select(
        Subscriber.email_hash,
        literal("hard_bounce"),
        literal("smtp"),
        literal(detail),
        literal(now, table.c.created_at.type),
    ).where(
        Subscriber.id.in_(ids),
        ~suppressed(Subscriber.email_hash),
    )
    cols = ["email_hash", "reason", "source", "detail", "created_at"]
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    session.execute(insert.from_select(cols, source).on_conflict_do_nothing())
    session.execute(
        update(Subscriber)
        .where(Subscriber.id.in_(ids), Subscriber.status == SubscriberStatus.active)
        .values(status=SubscriberStatus.bounced, status_changed_at=now)
        .execution_options(synchronize_session=False)
    )


def lift_send_bounces(session: Session, detail: str, now: datetime) -> int:
    """Undo the suppressions a send wrote with `detail` (the relay was at fault); count them.

    Readers marked bounced by them are active again; an entry from any other source stays.
    """
    hashes = list(
        session.scalars(
            select(Suppression.email_hash).where(
                Suppression.reason == "hard_bounce",
                Suppression.source == "smtp",
                Suppression.detail == detail,
            )
        )
    )
    if not hashes:
        return 0
    session.execute(
        update(Subscriber)
        .where(Subscriber.email_hash.in_(hashes), Subscriber.status == SubscriberStatus.bounced)
        .values(status=SubscriberStatus.active, status_changed_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Suppression)
        .where(Suppression.email_hash.in_(hashes), Suppression.detail == detail)
        .execution_options(synchronize_session=False)
    )
    return len(hashes)


def _add_hash(
    session: Session, digest: str, reason: str, source: str, detail: str, now: datetime
) -> Suppression | None:
    """Insert an entry unless one exists; return it, or None when it was already there."""
    if session.scalar(select(suppressed(digest))):
        return None
    row = Suppression(
        email_hash=digest, reason=reason, source=source, detail=detail, created_at=now
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None  # added concurrently: the outcome is the same
    # Suppressed means "never mail": a current subscriber stops receiving issues, and the
    # status says why in the subscriber list. Lifting the entry later does not resubscribe.
    for sub in session.scalars(
        select(Subscriber).where(
            Subscriber.email_hash == digest,
            Subscriber.status.in_((SubscriberStatus.active, SubscriberStatus.pending)),
        )
    ):
        sub.status = SubscriberStatus.unsubscribed
        sub.status_changed_at = now
        sub.unsubscribed_at = now
        events.subscriber_event(session, events.SUBSCRIBER_UNSUBSCRIBED, sub, "suppressed")
    session.flush()
    return row


def add_suppression(
    session: Session, *, email: str, reason: str, detail: str, source: str, now: datetime
) -> Suppression:
    """Suppress one address as an editor; Conflict if it is already suppressed."""
    row = _add_hash(session, hash_secret(normalize_email(email)), reason, source, detail, now)
    if row is None:
        raise Conflict("This address is already on the suppression list.")
    return row


def lift_suppression(session: Session, suppression_id: int) -> None:
    """Remove an entry; the address may be signed up or added again (it is not resubscribed)."""
    row = session.get(Suppression, suppression_id)
    if row is None:
        raise NotFound(f"No suppression {suppression_id}.")
    session.delete(row)
    session.flush()


def export_csv(session: Session) -> str:
    """Return the list as CSV: email_hash, reason, source, created_at."""
    # Built whole inside the request's transaction (~100 bytes a row): a streamed body would
    # outlive the request session.
    buf = io.StringIO()
    writer = csv_writer(buf)
    writer.writerow(EXPORT_COLUMNS)
    stmt = select(Suppression).order_by(Suppression.id).execution_options(yield_per=1000)
    for row in session.scalars(stmt):
        writer.writerow([row.email_hash, row.reason, row.source, row.created_at.isoformat()])
    return buf.getvalue()


def import_csv(
    session: Session, text: str, *, now: datetime, default_reason: str = "manual"
) -> tuple[int, int, list[str]]:
    """Add entries from CSV (email or email_hash column); return (added, already, rejected)."""
    # newline="": the csv module does its own line splitting (a lone CR in a field is data).
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return _import_rows(session, reader, now, default_reason)
    except csv.Error as exc:
        line = reader.line_num or 1
        raise InvalidInput(f"line {line}: the CSV cannot be read ({exc}).") from None


def _import_rows(
    session: Session, reader: csv.DictReader[str], now: datetime, default_reason: str
) -> tuple[int, int, list[str]]:
    columns = {c.strip().lower(): c for c in reader.fieldnames or []}
    if "email" not in columns and "email_hash" not in columns:
        raise InvalidInput("The CSV needs a header row with an email or an email_hash column.")
    added = already = 0
    rejected: list[str] = []
    for line, record in enumerate(reader, start=2):
        if line > IMPORT_MAX_ROWS:
            raise InvalidInput(f"At most {IMPORT_MAX_ROWS} rows per import.")
        digest, problem = _row_hash(record, columns)
        if digest is None:
            if len(rejected) < REJECTED_LIMIT:
                rejected.append(f"line {line}: {problem}")
            continue
        reason = (record.get(columns.get("reason", ""), "") or "").strip().lower()
        if reason not in REASONS:
            reason = default_reason
        if _add_hash(session, digest, reason, "import", "", now) is None:
            already += 1
        else:
            added += 1
    return added, already, rejected


def _row_hash(record: dict[str, str], columns: dict[str, str]) -> tuple[str | None, str]:
    """Return (hash, "") for a usable row, else (None, why)."""
    if "email_hash" in columns and (record.get(columns["email_hash"]) or "").strip():
        digest = (record.get(columns["email_hash"]) or "").strip().lower()
        if not _HASH.fullmatch(digest):
            return None, "email_hash is not a SHA-256 hex digest"
        return digest, ""
    raw = restore((record.get(columns.get("email", ""), "") or "").strip())
    if not raw:
        return None, "no address"
    try:
        return hash_secret(normalize_email(raw)), ""
    except InvalidInput as exc:
        return None, exc.message
