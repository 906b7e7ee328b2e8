"""A mixed population of readers for segment tests, and the segment filter computed in Python."""

from __future__ import annotations

import random
from typing import Any

from app.audience.newsletters import set_subscription
from app.audience.tags import add_tags
from app.context import Context
from app.db import session_scope
from app.models import Subscriber, SubscriberStatus, SubscriptionStatus, Suppression, utcnow
from app.tokens import hash_secret

FILTER = 'tag:vip and not tag:trial or attr.plan = "pro"'


def population(
    ctx: Context,
    newsletter_id: int,
    *,
    count: int,
    seed: int,
    prefix: str,
    record_leaving: bool = False,
) -> dict[int, dict[str, Any]]:
    """Readers of random status, tags, plans, newsletters and suppressions; what the test knows.

    About 70% take the newsletter; with `record_leaving` the others have an unsubscribed
    subscription to it, else none.
    """
    rnd = random.Random(seed)
    known: dict[int, dict[str, Any]] = {}
    now = utcnow()
    with session_scope(ctx.sessions) as session:
        for i in range(count):
            status = rnd.choice([SubscriberStatus.active] * 4 + [SubscriberStatus.unsubscribed])
            email = f"{prefix}{i}@example.org"
            row = Subscriber(
                email=email,
                email_hash=hash_secret(email),
                name=f"{prefix.upper()} {i}",
                status=status,
                consent_source="test",
                attributes={"plan": rnd.choice(["pro", "free"])},
            )
            session.add(row)
            session.flush()
            tags = {t for t in ("vip", "trial") if rnd.random() < 0.5}
            if tags:
                add_tags(session, row.id, sorted(tags), now)
            takes = rnd.random() < 0.7
            if takes or record_leaving:
                state = SubscriptionStatus.active if takes else SubscriptionStatus.unsubscribed
                set_subscription(session, row.id, newsletter_id, state, now)
            suppressed = rnd.random() < 0.1
            if suppressed:
                session.add(Suppression(email_hash=hash_secret(email), reason="manual"))
            active = status == SubscriberStatus.active
            known[row.id] = {
                "email": email,
                "active": active,
                "tags": tags,
                "plan": row.attributes["plan"],
                "takes": takes,
                "suppressed": suppressed,
                "ok": active and takes and not suppressed,
            }
    return known


def matching(known: dict[int, dict[str, Any]]) -> set[int]:
    """FILTER over the newsletter's eligible readers, computed here rather than in SQL."""
    return {
        sid
        for sid, r in known.items()
        if r["ok"] and (("vip" in r["tags"] and "trial" not in r["tags"]) or r["plan"] == "pro")
    }
