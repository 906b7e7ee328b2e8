"""Automations belong to a newsletter (issue 20): a sequence enrols only the readers who confirm
(or are tagged) in its newsletter, mails only readers still taking it, and its steps are that
newsletter's issues; a feed makes its issues in its newsletter; an unknown slug is a 422."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.audience.newsletters import leave, set_subscription
from app.automations.feeds import poll_feed
from app.automations.sequences.scheduler import tick
from app.context import Context
from app.db import session_scope
from app.models import (
    Delivery,
    Issue,
    SequenceStep,
    Subscriber,
    SubscriptionStatus,
    utcnow,
)
from tests.feed_support import FeedServer, story
from tests.helpers import SIMPLE_BLOCKS, add_subscribers, run_worker


def newsletter(client: TestClient, editor: dict[str, str], slug: str) -> int:
    """Create a newsletter and return its id."""
    made = client.post("/newsletters", json={"slug": slug, "name": slug.title()}, headers=editor)
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def draft(client: TestClient, editor: dict[str, str], subject: str, **fields: Any) -> int:
    """Create a draft issue and return its id."""
    body = {"subject": subject, "blocks": SIMPLE_BLOCKS, **fields}
    made = client.post("/issues", json=body, headers=editor)
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def confirm(client: TestClient, ctx: Context, email: str, **fields: Any) -> int:
    """Sign up through the public API and confirm; return the subscriber id."""
    ctx.settings.welcome_email = False  # only the editors' sequences here
    resp = client.post("/subscribe", json={"email": email, **fields})
    assert resp.status_code in (200, 201, 202), resp.text
    with session_scope(ctx.sessions) as session:
        row = session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        token = ctx.tokens.confirm_token(row.id, row.email)
    assert client.post(f"/confirm/{token}").status_code == 200
    return row.id


def rows(ctx: Context, sequence_id: int) -> set[tuple[int, int]]:
    """Return (step position, subscriber) of every ledger row of a sequence."""
    with session_scope(ctx.sessions) as session:
        found = session.execute(
            select(SequenceStep.position, Delivery.subscriber_id)
            .join(Delivery, Delivery.issue_id == SequenceStep.carrier_issue_id)
            .where(SequenceStep.sequence_id == sequence_id, Delivery.status != "cancelled")
        )
        return {(p, s) for p, s in found}


def test_a_sequence_follows_only_its_newsletters_readers_and_issues(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    robots_id = newsletter(client, editor, "robots")
    home_step = draft(client, editor, "Home step")
    robot_steps = [draft(client, editor, f"Robot {n}", newsletter="robots") for n in (1, 2)]

    def create(**body: Any) -> Any:
        return client.post("/sequences", json={"trigger": "confirmed", **body}, headers=editor)

    unknown = create(name="X", newsletter="nope", steps=[{"issue": robot_steps[0]}])
    assert unknown.status_code == 422 and "nope" in unknown.text
    foreign = create(name="X", newsletter="robots", steps=[{"issue": home_step}])
    assert foreign.status_code == 422 and "another newsletter" in foreign.text
    home = create(name="Home", steps=[{"issue": home_step}]).json()
    assert home["newsletter"] == "default"
    robots = create(
        name="Robots",
        newsletter="robots",
        steps=[{"issue": robot_steps[0]}, {"issue": robot_steps[1], "after": "PT1M"}],
    ).json()
    assert robots["newsletter"] == "robots"
    # The steps' carriers are the newsletter's issues (its masthead, its unsubscribe link).
    with session_scope(ctx.sessions) as session:
        for step in robots["steps"]:
            assert session.get_one(Issue, step["carrier"]).newsletter_id == robots_id

    robot_reader = confirm(client, ctx, "rob@example.org", newsletters=["robots"])
    home_reader = confirm(client, ctx, "hugo@example.org")
    tick(ctx)
    assert rows(ctx, robots["id"]) == {(0, robot_reader)}  # not the default's reader
    assert rows(ctx, home["id"]) == {(0, home_reader)}  # confirming B is not joining A

    run_worker(ctx)  # step 1 is delivered
    # Leaving the newsletter stops the steps still to come.
    with session_scope(ctx.sessions) as session:
        leave(session, robot_reader, robots_id, utcnow())
    tick(ctx, utcnow() + timedelta(minutes=2))
    assert rows(ctx, robots["id"]) == {(0, robot_reader)}
    stats = client.get(f"/sequences/{robots['id']}/stats", headers=editor).json()
    assert stats["active_readers"] == 0


def test_a_tag_trigger_counts_only_readers_of_the_newsletter(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    newsletter(client, editor, "robots")
    step = draft(client, editor, "Robot tips", newsletter="robots")
    seq = client.post(
        "/sequences",
        json={
            "name": "VIP robots",
            "newsletter": "robots",
            "trigger": {"tag": "vip"},
            "steps": [{"issue": step}],
        },
        headers=editor,
    ).json()
    inside = confirm(client, ctx, "in@example.org", newsletters=["robots"])
    outside = confirm(client, ctx, "out@example.org")
    for sub_id in (inside, outside):
        tagged = client.post(f"/subscribers/{sub_id}/tags", json={"tags": ["vip"]}, headers=editor)
        assert tagged.status_code == 200, tagged.text
    tick(ctx)
    assert rows(ctx, seq["id"]) == {(0, inside)}


def test_a_feed_makes_its_issues_in_its_newsletter(
    fclient: TestClient, fctx: Context, editor: dict[str, str], feed_server: FeedServer
) -> None:
    robots_id = newsletter(fclient, editor, "robots")
    unknown = fclient.post(
        "/feeds", json={"url": feed_server.url, "newsletter": "nope"}, headers=editor
    )
    assert unknown.status_code == 422
    made = fclient.post(
        "/feeds", json={"url": feed_server.url, "newsletter": "robots"}, headers=editor
    )
    assert made.status_code == 201 and made.json()["newsletter"] == "robots"
    plain = fclient.post("/feeds", json={"url": feed_server.url}, headers=editor).json()
    assert plain["newsletter"] == "default"
    feed_server.publish(story("a"))
    asyncio.run(poll_feed(fctx, made.json()["id"], force=True))  # records, mails nothing
    feed_server.publish(story("b"))
    issue_id = asyncio.run(poll_feed(fctx, made.json()["id"], force=True))
    assert issue_id is not None
    with session_scope(fctx.sessions) as session:
        assert session.get_one(Issue, issue_id).newsletter_id == robots_id


def test_a_reader_of_old_joining_another_newsletter_is_no_fresh_confirmation(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    robots_id = newsletter(client, editor, "robots")
    (old_reader,) = add_subscribers(ctx, 1)  # confirmed before the sequence, no subscriptions
    with session_scope(ctx.sessions) as session:
        session.get_one(Subscriber, old_reader).confirmed_at = utcnow() - timedelta(days=30)
    step = draft(client, editor, "Home step")
    seq = client.post(
        "/sequences",
        json={"name": "Home", "trigger": "confirmed", "steps": [{"issue": step}]},
        headers=editor,
    ).json()
    # Joining B writes down the default newsletter they took all along (since confirming).
    with session_scope(ctx.sessions) as session:
        set_subscription(session, old_reader, robots_id, SubscriptionStatus.active, utcnow())
    tick(ctx)
    assert rows(ctx, seq["id"]) == set()
