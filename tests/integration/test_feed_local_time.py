"""A daily feed in send mode goes out at HH:MM in each reader's own zone (issue 20): a
local-time send where every zone gets the first HH:MM not yet past there, and the feed polls
when HH:MM comes in the earliest zone. The worker's clock is moved as in test_local_time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import update

from app.automations.feeds import poll_feed
from app.context import Context
from app.db import session_scope
from app.delivery import build_worker
from app.models import Subscriber, utcnow
from tests.feed_support import FeedServer, story
from tests.helpers import add_subscribers
from tests.smtp_server import SMTPTestServer

ZONES = {"tokyo@example.org": "Asia/Tokyo", "ny@example.org": "America/New_York"}


def next_wall(wall: time, zone: str, after: datetime) -> datetime:
    """Return the first `wall` in `zone` at or after `after`, in UTC."""
    tz = ZoneInfo(zone)
    local = after.astimezone(tz)
    moment = datetime.combine(local.date(), wall, tzinfo=tz)
    if moment < local:
        moment = datetime.combine(local.date() + timedelta(days=1), wall, tzinfo=tz)
    return moment.astimezone(UTC)


def deliver_at(ctx: Context, moment: datetime) -> None:
    """Run the worker with its clock at `moment`."""
    asyncio.run(build_worker(ctx, clock=lambda: moment).run_until_idle())


def test_a_daily_send_feed_reaches_each_reader_at_hh_mm_in_their_zone(
    fclient: TestClient,
    fctx: Context,
    editor: dict[str, str],
    feed_server: FeedServer,
    smtp_server: SMTPTestServer,
) -> None:
    ids = add_subscribers(fctx, len(ZONES))
    with session_scope(fctx.sessions) as session:
        for sub_id, (email, zone) in zip(ids, ZONES.items(), strict=True):
            session.execute(
                update(Subscriber).where(Subscriber.id == sub_id).values(email=email, timezone=zone)
            )
    wall = time((utcnow() + timedelta(hours=2)).hour, 30)
    every = f"daily {wall.strftime('%H:%M')}"
    body = {"url": feed_server.url, "every": every, "mode": "send"}
    feed = fclient.post("/feeds", json=body, headers=editor).json()
    feed_server.publish(story("1"))
    asyncio.run(poll_feed(fctx, feed["id"], force=True))  # the back catalogue: recorded
    # It polls when HH:MM comes in the earliest zone (UTC+14), so HH:MM is ahead everywhere.
    shown = fclient.get(f"/feeds/{feed['id']}", headers=editor).json()
    next_poll = datetime.fromisoformat(shown["next_poll_at"])
    assert (next_poll.hour, next_poll.minute) == ((wall.hour - 14) % 24, wall.minute)

    feed_server.publish(story("2"))
    polled = utcnow()
    issue_id = asyncio.run(poll_feed(fctx, feed["id"], force=True))
    assert issue_id is not None
    stats = fclient.get(f"/issues/{issue_id}/stats", headers=editor).json()
    assert stats["status"] == "scheduled" and stats["local_time"] == wall.strftime("%H:%M")
    assert stats["recipients"] == 2

    moments = {email: next_wall(wall, zone, polled) for email, zone in ZONES.items()}
    got: list[str] = []
    for email, moment in sorted(moments.items(), key=lambda m: m[1]):
        deliver_at(fctx, moment - timedelta(minutes=1))
        assert [r.rcpt_tos[0] for r in smtp_server.handler.received] == got  # not yet
        deliver_at(fctx, moment + timedelta(minutes=1))
        got.append(email)
        assert [r.rcpt_tos[0] for r in smtp_server.handler.received] == got  # on time
    assert {str(r.message()["Subject"]) for r in smtp_server.handler.received} == {"Story 2"}
