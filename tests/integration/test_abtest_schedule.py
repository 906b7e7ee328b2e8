"""A/B tests compose with send_at and local time (issue 20): the sample goes out at send_at
(or at HH:MM in each sample reader's zone), the decision is due decide_after after the
sample's first copy, the rest get the winner (at their own HH:MM), each reader exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.automations.scheduler import ab_tick
from app.context import Context
from app.db import session_scope
from app.delivery import build_worker
from app.models import AbTest, Delivery, Subscriber, utcnow
from tests.helpers import add_subscribers, new_issue
from tests.smtp_server import SMTPTestServer

AB = {"subjects": ["Alpha", "Bravo"], "sample_percent": 50, "decide_after": "PT1H"}


def deliver_at(ctx: Context, moment: datetime) -> None:
    """Run the worker with its clock at `moment`."""
    asyncio.run(build_worker(ctx, clock=lambda: moment).run_until_idle())


def received(smtp_server: SMTPTestServer) -> list[tuple[str, str]]:
    """Return (recipient, subject) of every message received so far."""
    return [(r.rcpt_tos[0], str(r.message()["Subject"])) for r in smtp_server.handler.received]


def sample_of(ctx: Context, issue_id: int) -> set[str]:
    """Return the addresses in an A/B test's sample."""
    with session_scope(ctx.sessions) as session:
        carriers = session.get_one(AbTest, issue_id).carriers
        return set(
            session.scalars(
                select(Subscriber.email)
                .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                .where(Delivery.issue_id.in_(carriers))
            )
        )


def test_an_ab_send_at_a_later_time_sends_the_sample_then(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 8)
    issue = new_issue(client, editor)
    at = (utcnow() + timedelta(hours=2)).replace(microsecond=0)
    body = {"ab": AB, "send_at": at.isoformat()}
    resp = client.post(f"/issues/{issue['id']}/send", json=body, headers=editor)
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "scheduled" and resp.json()["recipients"] == 4
    assert datetime.fromisoformat(resp.json()["send_at"]) == at
    early = client.post(f"/issues/{issue['id']}/ab/decide", headers=editor)
    assert early.status_code == 409  # nothing to decide on before the sample went out
    deliver_at(ctx, utcnow())
    assert received(smtp_server) == []

    deliver_at(ctx, at + timedelta(minutes=1))
    sample = received(smtp_server)
    assert Counter(s for _, s in sample) == {"Alpha": 2, "Bravo": 2}
    assert client.get(f"/issues/{issue['id']}/stats", headers=editor).json()["status"] == "sending"
    assert ab_tick(ctx, at + timedelta(minutes=59)) == []  # decide_after counts from send_at
    assert ab_tick(ctx, at + timedelta(hours=1, minutes=1)) == [issue["id"]]
    deliver_at(ctx, at + timedelta(hours=1, minutes=2))
    everyone = received(smtp_server)
    assert len(everyone) == 8 and len({to for to, _ in everyone}) == 8  # one copy each
    winners = {s for _, s in everyone[4:]}
    assert len(winners) == 1 and winners <= {"Alpha", "Bravo"}


def test_cancelling_a_scheduled_ab_send_cancels_its_sample(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 4)
    issue = new_issue(client, editor)
    at = utcnow() + timedelta(hours=2)
    body = {"ab": AB, "send_at": at.isoformat()}
    assert client.post(f"/issues/{issue['id']}/send", json=body, headers=editor).status_code == 202
    assert client.post(f"/issues/{issue['id']}/cancel", headers=editor).status_code == 200
    ab_tick(ctx, utcnow())  # mirrors the cancel onto the variants
    deliver_at(ctx, at + timedelta(hours=2))
    assert received(smtp_server) == []


def test_an_ab_send_at_local_time_gives_sample_and_rest_their_own_hour(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    ids = add_subscribers(ctx, 8)
    zones = {}
    with session_scope(ctx.sessions) as session:
        for n, sub_id in enumerate(ids):
            zone = "Asia/Tokyo" if n % 2 else "America/New_York"
            email = f"{'tokyo' if n % 2 else 'ny'}{n}@example.org"
            zones[email] = zone
            session.execute(
                update(Subscriber).where(Subscriber.id == sub_id).values(email=email, timezone=zone)
            )
    day = (utcnow() + timedelta(days=3)).date()
    six = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
    tokyo, new_york = six - timedelta(hours=9), six + timedelta(hours=5)  # December: no DST
    issue = new_issue(client, editor)
    body = {"ab": AB, "local_time": "06:00", "date": day.isoformat()}
    resp = client.post(f"/issues/{issue['id']}/send", json=body, headers=editor)
    assert resp.status_code == 202, resp.text
    sample = sample_of(ctx, issue["id"])
    assert resp.json()["recipients"] == len(sample) == 4
    first = tokyo if any(zones[e] == "Asia/Tokyo" for e in sample) else new_york
    assert resp.json()["status"] == "scheduled"
    assert datetime.fromisoformat(resp.json()["send_at"]) == first

    deliver_at(ctx, tokyo - timedelta(minutes=1))
    assert received(smtp_server) == []
    deliver_at(ctx, tokyo + timedelta(minutes=1))
    assert {to for to, _ in received(smtp_server)} == {
        e for e in sample if zones[e] == "Asia/Tokyo"
    }
    if first == new_york:  # the random sample holds no Tokyo reader (1 in 70): it goes now
        deliver_at(ctx, new_york + timedelta(minutes=1))
    # Decided decide_after after the sample's first copy; Tokyo's rest gets it at once then.
    decided_at = first + timedelta(hours=1, minutes=1)
    assert ab_tick(ctx, decided_at) == [issue["id"]]
    deliver_at(ctx, decided_at + timedelta(minutes=1))
    if first == tokyo:  # (unless the random sample holds no Tokyo reader: 1 in 70)
        got = {to for to, _ in received(smtp_server)}
        assert got == {e for e in zones if e.startswith("tokyo")}
    deliver_at(ctx, new_york + timedelta(minutes=1))
    everyone = received(smtp_server)
    assert sorted(to for to, _ in everyone) == sorted(zones)  # each reader exactly once
    rest = {s for to, s in everyone if to not in sample}
    assert len(rest) == 1 and rest <= {"Alpha", "Bravo"}  # the rest: only the winner
