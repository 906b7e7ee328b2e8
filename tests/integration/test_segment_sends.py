"""Sending to a segment: exactly the newsletter's active readers who match, now or later."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import (
    Delivery,
    Issue,
    utcnow,
)
from tests.audience_support import FILTER, matching, population
from tests.helpers import new_issue, run_worker
from tests.smtp_server import SMTPTestServer


def _population(ctx: Context, newsletter_id: int) -> dict[int, dict[str, Any]]:
    return population(ctx, newsletter_id, count=60, seed=19, prefix="r")


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
    want = matching(known)
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
    assert _frozen(ctx, issue["id"]) == matching(known)


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
    assert resp.json()["recipients"] == len(matching(known))
    assert _frozen(ctx, issue["id"]) == matching(known)
