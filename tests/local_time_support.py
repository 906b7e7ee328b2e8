"""Local-time send support: readers in four zones, and a worker run at a given moment."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import update

from app.context import Context
from app.db import session_scope
from app.delivery import build_worker
from app.models import Subscriber
from tests.helpers import add_subscribers

ZONES = {
    "tokyo@example.org": "Asia/Tokyo",
    "berlin@example.org": "Europe/Berlin",
    "ny@example.org": "America/New_York",
    "plain@example.org": "UTC",
}


def local_readers(ctx: Context) -> None:
    ids = add_subscribers(ctx, len(ZONES))
    with session_scope(ctx.sessions) as session:
        for sub_id, (email, zone) in zip(ids, ZONES.items(), strict=True):
            session.execute(
                update(Subscriber).where(Subscriber.id == sub_id).values(email=email, timezone=zone)
            )


def deliver_at(ctx: Context, moment: datetime) -> None:
    worker = build_worker(ctx, clock=lambda: moment)
    asyncio.run(worker.run_until_idle())
