"""One contract per rule: the stats type, the send input, who is eligible for a send."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.audience.newsletters import DEFAULT_NEWSLETTER_ID, set_subscription
from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.models import (
    Delivery,
    Subscriber,
    SubscriberStatus,
    SubscriptionStatus,
    Suppression,
    utcnow,
)
from app.tokens import hash_secret
from tests.console_support import add_account, sign_in
from tests.helpers import add_subscribers, cli_env, new_issue, run_worker

STATS_FIELDS = {
    "recipients",
    "pending",
    "sending",
    "sent",
    "retry",
    "failed",
    "unknown",
    "cancelled",
    "status",
    "pause_reason",
    "rate_per_second",
    "eta_seconds",
    "not_yet_due",
    "next_due_at",
    "local_time",
    "local_date",
    "bounces",
    "alerts",
    "clicks",
}


@pytest.fixture
def csrf(client: TestClient, ctx: Context) -> str:
    """Sign the client in as an editor and return the session's CSRF token."""
    add_account(ctx)
    return sign_in(client)


def _two_readers_and_a_draft(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> tuple[dict[str, Any], str]:
    """Two readers, a draft, and a day three days ahead (ISO)."""
    add_subscribers(ctx, 2)
    day = (utcnow() + timedelta(days=3)).date().isoformat()
    return new_issue(client, editor), day


def _send_local(
    client: TestClient, editor: dict[str, str], issue_id: int, wall: str, day: str
) -> Any:
    """Send through the API at each reader's `wall` time on `day`."""
    body = {"local_time": wall, "date": day}
    return client.post(f"/issues/{issue_id}/send", json=body, headers=editor)


def test_stats_is_a_typed_response_with_the_same_keys(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    schema = client.get("/openapi.json").json()
    answer = schema["paths"]["/issues/{issue_id}/stats"]["get"]["responses"]["200"]
    ref = answer["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/SendStats"
    assert set(schema["components"]["schemas"]["SendStats"]["properties"]) == STATS_FIELDS

    add_subscribers(ctx, 3)
    issue = new_issue(client, editor)
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202
    run_worker(ctx)
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert set(stats) == STATS_FIELDS  # no `variants` key unless the send is an A/B test
    assert stats["recipients"] == stats["sent"] == 3 and stats["status"] == "sent"
    assert stats["bounces"] == {
        "hard": 0,
        "soft": 0,
        "complaints": 0,
        "policy_alerts": 0,
        "delayed": 0,
    }


def test_local_send_stats_write_next_due_at_in_utc(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    # Days ahead: everyone is due later, so next_due_at is set (in UTC, written with "Z").
    issue, day = _two_readers_and_a_draft(client, editor, ctx)
    sent = _send_local(client, editor, issue["id"], "06:00", day)
    assert sent.status_code == 202, sent.text
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["not_yet_due"] == 2 and stats["local_time"] == "06:00"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stats["next_due_at"]), stats


def _frozen(ctx: Context, issue_id: int) -> int:
    with session_scope(ctx.sessions) as session:
        return len(session.scalars(select(Delivery.id).where(Delivery.issue_id == issue_id)).all())


def test_the_confirm_page_states_the_count_the_send_freezes(
    client: TestClient, editor: dict[str, str], ctx: Context, csrf: str
) -> None:
    # Every kind of reader who must not get it, beside three who must.
    add_subscribers(ctx, 3)
    add_subscribers(ctx, 2, status=SubscriberStatus.unsubscribed, domain="gone.example.org")
    add_subscribers(ctx, 2, status=SubscriberStatus.pending, domain="pending.example.org")
    add_subscribers(ctx, 2, status=SubscriberStatus.bounced, domain="bounced.example.org")
    suppressed = add_subscribers(ctx, 2, domain="suppressed.example.org")
    paused = add_subscribers(ctx, 1, domain="paused.example.org")
    other = client.post("/newsletters", json={"slug": "other", "name": "Other"}, headers=editor)
    assert other.status_code == 201, other.text
    elsewhere = add_subscribers(ctx, 4, domain="other.example.org")
    now = utcnow()
    with session_scope(ctx.sessions) as session:
        for email in ("reader0@suppressed.example.org", "reader1@suppressed.example.org"):
            session.add(Suppression(email_hash=hash_secret(email), reason="manual"))
        session.execute(
            update(Subscriber)
            .where(Subscriber.id.in_(paused))
            .values(paused_until=now + timedelta(days=7))
        )
        for sid in elsewhere:  # readers of the other newsletter only
            set_subscription(session, sid, other.json()["id"], SubscriptionStatus.active, now)
            gone = SubscriptionStatus.unsubscribed
            set_subscription(session, sid, DEFAULT_NEWSLETTER_ID, gone, now)
    assert suppressed  # present and active, yet on the list

    issue = new_issue(client, editor)
    confirm = client.get(f"/editor/issues/{issue['id']}/send")
    assert confirm.status_code == 200
    stated = re.search(r"Send to ([\d,]+) reader", confirm.text)
    assert stated, confirm.text
    sent = client.post(f"/editor/issues/{issue['id']}/send", data={"csrf_token": csrf})
    assert sent.status_code == 200, sent.text
    assert int(stated.group(1)) == _frozen(ctx, issue["id"]) == 3

    # The other newsletter's confirm page counts its four readers, and its send freezes four.
    theirs = new_issue(client, editor, slug="theirs", newsletter="other")
    confirm = client.get(f"/editor/issues/{theirs['id']}/send")
    stated = re.search(r"Send to ([\d,]+) reader", confirm.text)
    assert stated, confirm.text
    client.post(f"/editor/issues/{theirs['id']}/send", data={"csrf_token": csrf})
    assert int(stated.group(1)) == _frozen(ctx, theirs["id"]) == 4


def test_a_local_time_with_seconds_is_refused_in_the_apis_words_everywhere(
    client: TestClient, editor: dict[str, str], ctx: Context, csrf: str, settings: Settings
) -> None:
    issue, day = _two_readers_and_a_draft(client, editor, ctx)
    api = _send_local(client, editor, issue["id"], "06:00:30", day)
    assert api.status_code == 422
    message = api.json()["detail"]
    assert message.startswith("local_time: ") and "HH:MM" in message

    asked = client.get(
        f"/editor/issues/{issue['id']}/send-local",
        params={"local_time": "06:00:30", "local_date": day},
    )
    assert asked.status_code == 422 and message in html.unescape(asked.text)
    console = client.post(
        f"/editor/issues/{issue['id']}/send-local",
        data={"local_time": "06:00:30", "local_date": day, "csrf_token": csrf},
    )
    assert console.status_code == 422 and message in html.unescape(console.text)

    args = ["issues", "send", str(issue["id"]), "--local-time", "06:00:30", "--date", day]
    cli = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 2 and cli.stderr.strip() == f"error: {message}"
    assert _frozen(ctx, issue["id"]) == 0
    assert client.get(f"/issues/{issue['id']}", headers=editor).json()["status"] == "draft"
