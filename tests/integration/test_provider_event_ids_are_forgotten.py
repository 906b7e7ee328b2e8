"""Provider event ids (and Mailgun tokens) are remembered for EVENT_ID_DAYS, then forgotten.

They guard against a webhook delivered twice; providers redeliver for at most a few days, so
keeping them for ever only grows a table. Each provider's newest id stays: the console tells
when its last event arrived.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.bounces.service import EVENT_ID_DAYS, first_time
from app.context import Context
from app.db import session_scope
from app.housekeeping import tidy
from app.models import ProviderEvent, utcnow
from app.providers.service import last_events


def test_old_event_ids_are_forgotten_but_recent_ones_still_refuse_a_redelivery(
    ctx: Context,
) -> None:
    now = utcnow()
    old = now - timedelta(days=EVENT_ID_DAYS + 1)
    with session_scope(ctx.sessions) as s:
        for provider, event_id, at in [
            ("ses", "ses-old-1", old),
            ("ses", "ses-old-2", old + timedelta(hours=1)),
            ("ses", "ses-new", now - timedelta(days=1)),
            ("mailgun", "mg-old", old - timedelta(days=3)),
            ("mailgun", "mg-older", old - timedelta(days=5)),
            ("mailgun-token", "tok-old", old),
        ]:
            s.add(ProviderEvent(provider=provider, event_id=event_id, received_at=at))
        s.flush()
        # Mailgun's newest is old, and stays; so does the newest token row.
        s.execute(
            ProviderEvent.__table__.update()
            .where(ProviderEvent.event_id == "mg-old")
            .values(id=10_000)
        )
    with session_scope(ctx.sessions) as s:
        done = tidy(s, ctx.settings, now)
    assert done["forgotten_event_ids"] == 3
    with session_scope(ctx.sessions) as s:
        kept = set(s.scalars(select(ProviderEvent.event_id)))
        assert kept == {"ses-new", "mg-old", "tok-old"}
        seen = last_events(s)
        assert seen["ses"] is not None and seen["mailgun"] is not None
        # A redelivery of a recent event is still recognised; a forgotten one counts anew.
        assert first_time(s, "ses", "ses-new", now) is False
        assert first_time(s, "ses", "ses-old-1", now) is True
    with session_scope(ctx.sessions) as s:
        assert tidy(s, ctx.settings, now)["forgotten_event_ids"] == 0
