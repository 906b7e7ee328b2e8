"""Tags on readers: one at a time, or in bulk over ids, a segment or a filter (flush only)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, insert, select
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.models import Subscriber, SubscriberTag

TAG = re.compile(r"[a-z0-9][a-z0-9_+-]{0,63}")
MAX_TAGS_PER_CALL = 50
BULK_CHUNK = 1000


def clean_tag(raw: object) -> str:
    """Return a tag in its stored form (lower case) or raise InvalidInput."""
    tag = raw.strip().lower() if isinstance(raw, str) else ""
    if not TAG.fullmatch(tag):
        raise InvalidInput(
            f"{str(raw)[:80]!r} is not a tag: use up to 64 letters, digits, _, + or -, "
            "starting with a letter or digit."
        )
    return tag


def clean_tags(raw: Iterable[object]) -> list[str]:
    """Return distinct cleaned tags, in the order given."""
    tags = list(dict.fromkeys(clean_tag(t) for t in raw))
    if len(tags) > MAX_TAGS_PER_CALL:
        raise InvalidInput(f"At most {MAX_TAGS_PER_CALL} tags at once.")
    return tags


def tags_of(session: Session, subscriber_id: int) -> list[str]:
    """Return a reader's tags, sorted."""
    return list(
        session.scalars(
            select(SubscriberTag.tag)
            .where(SubscriberTag.subscriber_id == subscriber_id)
            .order_by(SubscriberTag.tag)
        )
    )


def _add(session: Session, ids: Sequence[int], tags: Sequence[str], now: datetime) -> int:
    """Add tags to readers who lack them; return how many (reader, tag) pairs were added."""
    added = 0
    for start in range(0, len(ids), BULK_CHUNK):
        chunk = ids[start : start + BULK_CHUNK]
        for tag in tags:
            have = set(
                session.scalars(
                    select(SubscriberTag.subscriber_id).where(
                        SubscriberTag.tag == tag, SubscriberTag.subscriber_id.in_(chunk)
                    )
                )
            )
            rows = [
                {"subscriber_id": sid, "tag": tag, "created_at": now}
                for sid in chunk
                if sid not in have
            ]
            if rows:
                session.execute(insert(SubscriberTag), rows)
                added += len(rows)
    return added


def _remove(session: Session, ids: Sequence[int], tags: Sequence[str]) -> int:
    removed = 0
    for start in range(0, len(ids), BULK_CHUNK):
        chunk = ids[start : start + BULK_CHUNK]
        result = session.execute(
            delete(SubscriberTag).where(
                SubscriberTag.subscriber_id.in_(chunk), SubscriberTag.tag.in_(tags)
            )
        )
        removed += result.rowcount or 0  # type: ignore[attr-defined]
    return removed


def add_tags(
    session: Session, subscriber_id: int, raw: Iterable[object], now: datetime
) -> list[str]:
    """Tag one reader; return their tags."""
    if session.get(Subscriber, subscriber_id) is None:
        raise NotFound("No such subscriber.")
    _add(session, [subscriber_id], clean_tags(raw), now)
    return tags_of(session, subscriber_id)


def remove_tag(session: Session, subscriber_id: int, raw: object) -> list[str]:
    """Untag one reader (a tag they do not have is fine); return their tags."""
    if session.get(Subscriber, subscriber_id) is None:
        raise NotFound("No such subscriber.")
    _remove(session, [subscriber_id], [clean_tag(raw)])
    return tags_of(session, subscriber_id)


def bulk_tags(
    session: Session,
    where: ColumnElement[bool],
    add: Iterable[object],
    remove: Iterable[object],
    now: datetime,
) -> dict[str, int]:
    """Add and remove tags on every reader matching `where`; return the counts."""
    to_add, to_remove = clean_tags(add), clean_tags(remove)
    if not to_add and not to_remove:
        raise InvalidInput('Name tags to "add" or "remove".')
    if set(to_add) & set(to_remove):
        raise InvalidInput("A tag cannot be added and removed at once.")
    ids = list(session.scalars(select(Subscriber.id).where(where).order_by(Subscriber.id)))
    return {
        "matched": len(ids),
        "added": _add(session, ids, to_add, now),
        "removed": _remove(session, ids, to_remove) if to_remove else 0,
    }
