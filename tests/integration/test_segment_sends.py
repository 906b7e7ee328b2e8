"""Sending to a segment: exactly the newsletter's active readers who match, now or later."""

from __future__ import annotations

import random
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.audience.newsletters import set_subscription
from app.audience.tags import add_tags
from app.context import Context
from app.db import session_scope
from app.models import (
    Delivery,
    Issue,
    Subscriber,
    SubscriberStatus,
    SubscriptionStatus,
    Suppression,
    utcnow,
)
from app.tokens import hash_secret
from tests.helpers import new_issue, run_worker
from tests.smtp_server import SMTPTestServer


def _population(ctx: Context, newsletter_id: int, count: int = 60) -> dict[int, dict[str, object]]:
    """Readers with random status, tags, newsletters and suppressions; what the test knows."""
    rnd = random.Random(19)
    known: dict[int, dict[str, object]] = {}
    now = utcnow()
    with session_scope(ctx.sessions) as session:
        for i in range(count):
            status = rnd.choice([SubscriberStatus.active] * 4 + [SubscriberStatus.unsubscribed])
            email = f"r{i}@example.org"
            row = Subscriber(
                email=email,
                email_hash=hash_secret(email),
                name=f"R {i}",
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
            if takes:
                set_subscription(session, row.id, newsletter_id, SubscriptionStatus.active, now)
            suppressed = rnd.random() < 0.1
            if suppressed:
                session.add(Suppression(email_hash=hash_secret(email), reason="manual"))
            known[row.id] = {
                "email": email,
                "active": status == SubscriberStatus.active,
                "tags": tags,
                "plan": row.attributes["plan"],
                "takes": takes,
                "suppressed": suppressed,
            }
    return known


def _expected(known: dict[int, dict[str, object]]) -> set[int]:
    """The filter `tag:vip and not tag:trial or attr.plan = "pro"`, computed here."""
    return {
        sid
        for sid, r in known.items()
        if r["active"]
        and r["takes"]
        and not r["suppressed"]
        and (("vip" in r["tags"] and "trial" not in r["tags"]) or r["plan"] == "pro")  # type: ignore[operator]
    }


FILTER = 'tag:vip and not tag:trial or attr.plan = "pro"'


def _frozen(ctx: Context, issue_id: int) -> set[int]:
    with session_scope(ctx.sessions) as session:
        return set(
            session.scalars(select(Delivery.subscriber_id).where(Delivery.issue_id == issue_id))
        )


def test_a_segment_send_reaches_exactly_the_matching_set(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    nid = client.post("/newsletters", json={"slug": "pro", "name": "Pro"}, headers=editor).json()[
        "id"
    ]
    known = _population(ctx, nid)
    want = _expected(known)
    assert 0 < len(want) < len(known)
    segment = client.post(
        "/segments", json={"name": "keen", "filter": FILTER, "newsletter": "pro"}, headers=editor
    )
    assert segment.status_code == 201, segment.text
    sid = segment.json()["id"]
    count = client.get(f"/segments/{sid}/count", headers=editor).json()["count"]
    preview = client.get(
        "/segments/preview", params={"newsletter": "pro", "filter": FILTER}, headers=editor
    ).json()
    assert count == preview["count"] == len(want)

    issue = new_issue(client, editor, slug="keen", newsletter="pro")
    sent = client.post(f"/issues/{issue['id']}/send", json={"segment": sid}, headers=editor)
    assert sent.status_code == 202, sent.text
    assert sent.json()["recipients"] == count
    assert _frozen(ctx, issue["id"]) == want
    run_worker(ctx)
    got = smtp_server.handler.wait_for(len(want))
    assert sorted(a for r in got for a in r.rcpt_tos) == sorted(
        str(known[i]["email"]) for i in want
    )

    # The same filter given with the send (not saved) freezes the same set.
    other = new_issue(client, editor, slug="keen-2", newsletter="pro")
    again = client.post(f"/issues/{other['id']}/send", json={"filter": FILTER}, headers=editor)
    assert again.json()["recipients"] == len(want) and _frozen(ctx, other["id"]) == want

    # Bad input: a 422 naming the position, nothing frozen.
    bad = new_issue(client, editor, slug="keen-3", newsletter="pro")
    refused = client.post(f"/issues/{bad['id']}/send", json={"filter": "tag:"}, headers=editor)
    assert refused.status_code == 422 and _frozen(ctx, bad["id"]) == set()
    both = client.post(
        f"/issues/{bad['id']}/send", json={"filter": FILTER, "segment": sid}, headers=editor
    )
    assert both.status_code == 422


def test_a_scheduled_segment_send_freezes_the_same_audience_at_its_start(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    nid = client.post("/newsletters", json={"slug": "pro", "name": "Pro"}, headers=editor).json()[
        "id"
    ]
    known = _population(ctx, nid)
    issue = new_issue(client, editor, slug="later", newsletter="pro")
    when = (utcnow() + timedelta(hours=1)).isoformat()
    resp = client.post(
        f"/issues/{issue['id']}/send", json={"send_at": when, "filter": FILTER}, headers=editor
    )
    assert resp.status_code == 202 and resp.json()["status"] == "scheduled"
    with session_scope(ctx.sessions) as session:
        row = session.get_one(Issue, issue["id"])
        assert row.audience_filter == FILTER
        row.send_at = utcnow() - timedelta(seconds=1)
    run_worker(ctx)
    assert _frozen(ctx, issue["id"]) == _expected(known)


def test_a_local_time_segment_send_freezes_the_matching_set(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    nid = client.post("/newsletters", json={"slug": "pro", "name": "Pro"}, headers=editor).json()[
        "id"
    ]
    known = _population(ctx, nid)
    issue = new_issue(client, editor, slug="local", newsletter="pro")
    day = (utcnow() + timedelta(days=2)).date().isoformat()
    resp = client.post(
        f"/issues/{issue['id']}/send",
        json={"local_time": "06:00", "date": day, "filter": FILTER},
        headers=editor,
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["recipients"] == len(_expected(known))
    assert _frozen(ctx, issue["id"]) == _expected(known)
