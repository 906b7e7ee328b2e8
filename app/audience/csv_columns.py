"""The audience's CSV columns: `tags` and `newsletters` (separated by `;`), `attr.<name>`.

Read by the subscriber import, written by the export, so a file exported imports again with
the same tags, newsletters and attributes. Attribute cells are typed as the API's JSON is:
`true`/`false` are booleans, numbers written as numbers are numbers, anything else is text;
the same bounds hold as on PATCH /subscribers/{id} (50 keys, 1 KB a value).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from app.audience.attributes import Value, clean_value, merge_attributes
from app.audience.filter_sql import ATTRIBUTE_NAME
from app.audience.tags import clean_tags
from app.errors import InvalidInput
from app.models import (
    DEFAULT_NEWSLETTER_ID,
    Newsletter,
    Subscriber,
    SubscriberStatus,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
)

SEPARATOR = ";"
ATTR_PREFIX = "attr."
# Only numbers written the way JSON (and the export) writes them: "007" or "1,5" stay text.
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?P<frac>\.[0-9]+)?(?P<exp>[eE][-+]?[0-9]+)?")


def attribute_column(header: str) -> str | None:
    """Return the attribute a header names (`attr.plan` → `plan`), None for other columns."""
    if not header.lower().startswith(ATTR_PREFIX):
        return None
    name = header[len(ATTR_PREFIX) :]
    if not ATTRIBUTE_NAME.fullmatch(name):
        raise InvalidInput(
            f"Column {header[:80]!r}: an attribute name is up to 64 letters, digits or _, "
            "not starting with a digit."
        )
    return name


def _items(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(SEPARATOR) if part.strip()]


def parse_tags(cell: str) -> list[str]:
    """Return the tags of a `tags` cell (`vip; trial`), or raise InvalidInput."""
    return clean_tags(_items(cell))


def parse_newsletters(cell: str, by_slug: Mapping[str, int]) -> list[int]:
    """Return the newsletter ids of a `newsletters` cell, or raise InvalidInput naming a slug."""
    ids = []
    for slug in dict.fromkeys(_items(cell)):
        if slug not in by_slug:
            raise InvalidInput(f"There is no newsletter {slug[:80]!r}.")
        ids.append(by_slug[slug])
    return ids


def typed(name: str, text: str) -> Value:
    """Return an attribute cell as the value the API would store for the same JSON."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    match = _NUMBER.fullmatch(text.strip())
    if match is not None:
        number = float(text) if match["frac"] or match["exp"] else int(text)
        return clean_value(name, number)
    return clean_value(name, text)


def parse_attributes(cells: Mapping[str, str]) -> dict[str, Value]:
    """Return the attributes of a row's non-empty `attr.` cells (bounded), or raise."""
    values: dict[str, Value] = {n: typed(n, text) for n, text in cells.items() if text != ""}
    merge_attributes({}, values)  # the bounds (key count) as on PATCH /subscribers/{id}
    return values


def cell_of(value: Any) -> str:
    """Return an attribute value as the export writes it (read back by `typed`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return "" if value is None else str(value)


def newsletter_slugs(session: Session) -> dict[str, int]:
    """Return {slug: id} of every newsletter (a handful: read once per import)."""
    return {slug: int(i) for slug, i in session.execute(select(Newsletter.slug, Newsletter.id))}


def add_tags(session: Session, wanted: Mapping[int, Sequence[str]], now: datetime) -> set[int]:
    """Give readers the tags they lack (never removing one); return the readers changed."""
    ids = [sid for sid, tags in wanted.items() if tags]
    if not ids:
        return set()
    have = {
        (int(sid), str(tag))
        for sid, tag in session.execute(
            select(SubscriberTag.subscriber_id, SubscriberTag.tag).where(
                SubscriberTag.subscriber_id.in_(ids)
            )
        )
    }
    rows: list[dict[str, Any]] = [
        {"subscriber_id": sid, "tag": tag, "created_at": now}
        for sid in ids
        for tag in wanted[sid]
        if (sid, tag) not in have
    ]
    if rows:
        session.execute(insert(SubscriberTag), rows)
    return {int(row["subscriber_id"]) for row in rows}


def join_newsletters(
    session: Session,
    wanted: Mapping[int, Sequence[int]],
    now: datetime,
    *,
    fresh: Iterable[int] = (),
) -> set[int]:
    """Make readers take the newsletters listed for them; return the readers changed.

    A reader who left one stays out of it (an import never resubscribes anyone); a pending one
    becomes active (the editor vouches by importing). A reader with no subscription yet, who
    took the default newsletter implicitly, keeps it (as set_subscription does); one made by
    this very import (`fresh`) takes exactly what is listed.
    """
    new = set(fresh)
    ids = [sid for sid, nids in wanted.items() if nids]
    if not ids:
        return set()
    current: dict[int, dict[int, str]] = defaultdict(dict)
    for sid, nid, status in session.execute(
        select(Subscription.subscriber_id, Subscription.newsletter_id, Subscription.status).where(
            Subscription.subscriber_id.in_(ids)
        )
    ):
        current[sid][nid] = str(status)
    statuses = {
        int(sid): str(status)
        for sid, status in session.execute(
            select(Subscriber.id, Subscriber.status).where(Subscriber.id.in_(ids))
        )
    }
    rows: list[dict[str, Any]] = []
    activate: list[tuple[int, int]] = []
    for sid in ids:
        have = current.get(sid, {})
        listed = list(wanted[sid])
        if not have and DEFAULT_NEWSLETTER_ID not in listed and sid not in new:
            listed.append(DEFAULT_NEWSLETTER_ID)
        standing = (
            SubscriptionStatus.active
            if statuses.get(sid) == SubscriberStatus.active
            else SubscriptionStatus.pending
        )
        for nid in dict.fromkeys(listed):
            if nid not in have:
                rows.append(
                    {
                        "subscriber_id": sid,
                        "newsletter_id": nid,
                        "status": standing,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            elif have[nid] == SubscriptionStatus.pending and standing == "active":
                activate.append((sid, nid))
    if rows:
        session.execute(insert(Subscription), rows)
    for sid, nid in activate:
        session.execute(
            update(Subscription)
            .where(Subscription.subscriber_id == sid, Subscription.newsletter_id == nid)
            .values(status=SubscriptionStatus.active, updated_at=now)
        )
    return {int(row["subscriber_id"]) for row in rows} | {sid for sid, _ in activate}


def active_slugs(session: Session, subscriber_ids: Iterable[int]) -> dict[int, list[str]]:
    """Return the slugs of the newsletters each reader actively takes (the implicit default too)."""
    ids = list(subscriber_ids)
    found: dict[int, list[str]] = defaultdict(list)
    anyrow: set[int] = set()
    rows = session.execute(
        select(Subscription.subscriber_id, Subscription.status, Newsletter.slug)
        .join(Newsletter, Newsletter.id == Subscription.newsletter_id)
        .where(Subscription.subscriber_id.in_(ids))
        .order_by(Subscription.subscriber_id, Newsletter.id)
    )
    for sid, status, slug in rows:
        anyrow.add(sid)
        if status == SubscriptionStatus.active:
            found[sid].append(slug)
    default = session.scalar(select(Newsletter.slug).where(Newsletter.id == DEFAULT_NEWSLETTER_ID))
    active = set(
        session.scalars(
            select(Subscriber.id).where(
                Subscriber.id.in_(ids), Subscriber.status == SubscriberStatus.active
            )
        )
    )
    for sid in ids:
        if sid not in anyrow and sid in active and default is not None:
            found[sid].append(default)
    return found


def tags_by_reader(session: Session, subscriber_ids: Iterable[int]) -> dict[int, list[str]]:
    """Return each reader's tags, sorted."""
    found: dict[int, list[str]] = defaultdict(list)
    rows = session.execute(
        select(SubscriberTag.subscriber_id, SubscriberTag.tag)
        .where(SubscriberTag.subscriber_id.in_(list(subscriber_ids)))
        .order_by(SubscriberTag.subscriber_id, SubscriberTag.tag)
    )
    for sid, tag in rows:
        found[sid].append(tag)
    return found
