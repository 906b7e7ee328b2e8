"""The editor's morning, second pass (issue 22): nothing lost, nothing surprising."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.context import Context
from app.db import session_scope
from app.models import Issue, IssueStatus, Subscriber, utcnow
from tests.console_support import add_account, sign_in
from tests.helpers import add_subscribers, new_issue

ZONES_MIXED = ["Asia/Tokyo", "Asia/Tokyo", "Europe/Berlin", "Pacific/Honolulu"]


@pytest.fixture
def csrf(client: TestClient, ctx: Context) -> str:
    """Sign the client in as an editor and return the session's CSRF token."""
    add_account(ctx)
    return sign_in(client)


def _zones(ctx: Context, zones: list[str]) -> None:
    ids = add_subscribers(ctx, len(zones))
    with session_scope(ctx.sessions) as session:
        for sub_id, zone in zip(ids, zones, strict=True):
            session.execute(update(Subscriber).where(Subscriber.id == sub_id).values(timezone=zone))


def test_send_at_their_time_asks_first_with_counts_and_moments(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    # Today, 06:00 has passed in Tokyo long before it comes in Honolulu: some now, some later.
    _zones(ctx, ZONES_MIXED)
    issue = new_issue(client, editor)
    day = utcnow().date()
    page = client.get(
        f"/editor/issues/{issue['id']}/send-local",
        params={"local_time": "06:00", "local_date": day.isoformat()},
    )
    assert page.status_code == 200, page.text
    # Asking changed nothing: the issue is still a draft and no row is frozen.
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Issue, issue["id"]).status == IssueStatus.draft
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    now = utcnow()
    moments = [
        datetime.combine(day, time(6), tzinfo=ZoneInfo(z)).astimezone(UTC) for z in ZONES_MIXED
    ]
    due_now = sum(1 for m in moments if m <= now)
    ahead = sorted(m for m in moments if m > now)
    assert re.search(rf"\b{due_now} get it now\b", text), text
    assert re.search(rf"\b{len(ahead)} get it later\b", text), text
    if ahead:
        assert f"it later: the first at {ahead[0]:%Y-%m-%d %H:%M} UTC" in text
        assert f"the last at {ahead[-1]:%Y-%m-%d %H:%M} UTC" in text
    if due_now:
        assert "as soon as you confirm" in text
    assert "Send to 4 readers at their time" in text
    sent = client.post(
        f"/editor/issues/{issue['id']}/send-local",
        data={"local_time": "06:00", "local_date": day.isoformat(), "csrf_token": csrf},
    )
    assert sent.status_code == 200 and "their own time zone" in sent.text


def test_send_at_their_time_a_day_ahead_states_everyone_later(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    _zones(ctx, ["Asia/Tokyo", "America/New_York"])
    issue = new_issue(client, editor)
    day = (utcnow() + timedelta(days=3)).date()
    page = client.get(
        f"/editor/issues/{issue['id']}/send-local",
        params={"local_time": "06:00", "local_date": day.isoformat()},
    )
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    assert re.search(r"\b0 get it now\b", text) and re.search(r"\b2 get it later\b", text)
    assert f"the first at {day - timedelta(days=1)} 21:00 UTC" in text  # 06:00 Tokyo
    assert f"the last at {day} 11:00 UTC" in text  # 06:00 New York (EST)
    bad = client.get(
        f"/editor/issues/{issue['id']}/send-local",
        params={"local_time": "six", "local_date": day.isoformat()},
    )
    assert bad.status_code == 422 and "06:00" in bad.text
    with session_scope(ctx.sessions) as session:
        assert session.scalars(select(Issue.status)).all() == [IssueStatus.draft]
