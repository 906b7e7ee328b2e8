"""A send does what was asked and nothing else: its audience, its time, its one version.

- An A/B send with a `segment` or `filter` samples and finishes within that audience.
- An issue whose text was frozen when its A/B test was set up takes no more edits (409), so
  the issue never reads one text while its readers get another.
- A local-time send keeps each reader's own moment: its `send_at` is not moved by a PATCH
  or the console's schedule form (409: cancel it instead).
- A local-time send that its start's check refuses goes back to a clean draft: its frozen
  readers are let go, so the next send (now, later, or local) is a fresh one.
- A local-time day at the calendar's very edge is refused in one sentence by the API, the
  console and the command line alike (the command line used to crash with a traceback).
"""

from __future__ import annotations

import html
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.models import Delivery, FrozenIssue, Issue, Subscriber, utcnow
from tests.console_support import add_account, sign_in
from tests.helpers import add_subscribers, cli_env, new_issue
from tests.local_time_support import ZONES, deliver_at, local_readers

OURS = 'email ~ "*@example.org"'  # the four local readers, not the six of other.example


def _readers(ctx: Context) -> tuple[set[int], set[int]]:
    """Four readers who match OURS and six who do not; return (matching, others) ids."""
    local_readers(ctx)
    add_subscribers(ctx, 6, domain="other.example")
    with session_scope(ctx.sessions) as session:
        rows = session.execute(select(Subscriber.id, Subscriber.email)).all()
    ours = {sid for sid, email in rows if email in ZONES}
    return ours, {sid for sid, _ in rows} - ours


def _frozen_readers(ctx: Context) -> list[int]:
    """Return the reader of every delivery row, of every issue (A/B carriers included)."""
    with session_scope(ctx.sessions) as session:
        return list(session.scalars(select(Delivery.subscriber_id)))


def _due(ctx: Context, issue_id: int) -> list[datetime | None]:
    with session_scope(ctx.sessions) as session:
        return sorted(
            session.scalars(
                select(Delivery.next_attempt_at).where(Delivery.issue_id == issue_id)
            ).all(),
            key=str,
        )


def _send(client: TestClient, editor: dict[str, str], issue_id: int, body: dict[str, Any]) -> Any:
    return client.post(f"/issues/{issue_id}/send", json=body, headers=editor)


def test_an_ab_send_to_a_filter_reaches_only_that_filter(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    ours, _ = _readers(ctx)
    issue = new_issue(client, editor)
    ab = {"subjects": ["Alpha", "Bravo"], "sample_percent": 50, "decide_after": "PT1H"}
    resp = _send(client, editor, issue["id"], {"ab": ab, "filter": OURS})
    assert resp.status_code == 202, resp.text
    assert set(_frozen_readers(ctx)) <= ours  # the sample: within the filter
    decided = client.post(f"/issues/{issue['id']}/ab/decide", headers=editor)
    assert decided.status_code == 200, decided.text
    frozen = _frozen_readers(ctx)
    assert sorted(frozen) == sorted(ours)  # the rest too: each matching reader once, no other


def test_an_ab_send_to_a_segment_reaches_only_that_segment(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    ours, _ = _readers(ctx)
    made = client.post("/segments", json={"name": "ours", "filter": OURS}, headers=editor)
    assert made.status_code == 201, made.text
    issue = new_issue(client, editor)
    ab = {"subjects": ["Alpha", "Bravo"], "sample_percent": 100}
    resp = _send(client, editor, issue["id"], {"ab": ab, "segment": made.json()["id"]})
    assert resp.status_code == 202, resp.text
    assert sorted(_frozen_readers(ctx)) == sorted(ours)


def test_an_issue_frozen_by_its_scheduled_ab_test_refuses_edits(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _readers(ctx)
    issue = new_issue(client, editor)
    later = (utcnow() + timedelta(days=1)).isoformat()
    ab = {"subjects": ["Alpha", "Bravo"], "sample_percent": 50}
    resp = _send(client, editor, issue["id"], {"ab": ab, "send_at": later})
    assert resp.status_code == 202 and resp.json()["status"] == "scheduled", resp.text
    edit = client.patch(
        f"/issues/{issue['id']}",
        json={"blocks": [{"type": "markdown", "body": "A text nobody will get"}]},
        headers=editor,
    )
    assert edit.status_code == 409, edit.text
    with session_scope(ctx.sessions) as session:
        live = session.get_one(Issue, issue["id"])
        frozen = session.get_one(FrozenIssue, issue["id"])
        # One version: what the issue reads is what its readers get.
        assert live.blocks == frozen.blocks and live.version == frozen.version


def test_a_local_time_send_keeps_each_readers_moment_when_asked_to_move(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _readers(ctx)
    csrf = (add_account(ctx), sign_in(client))[1]
    issue = new_issue(client, editor)
    day = (utcnow() + timedelta(days=3)).date().isoformat()
    resp = _send(client, editor, issue["id"], {"local_time": "06:00", "date": day})
    assert resp.status_code == 202 and resp.json()["status"] == "scheduled", resp.text
    planned = client.get(f"/issues/{issue['id']}", headers=editor).json()["send_at"]
    due = _due(ctx, issue["id"])

    later = (utcnow() + timedelta(days=10)).replace(microsecond=0)
    moved = client.patch(
        f"/issues/{issue['id']}", json={"send_at": later.isoformat()}, headers=editor
    )
    assert moved.status_code == 409, moved.text
    form = client.post(
        f"/editor/issues/{issue['id']}/schedule",
        data={"send_at": later.strftime("%Y-%m-%dT%H:%M"), "csrf_token": csrf},
    )
    assert form.status_code == 409, form.status_code
    assert "local time" in form.text
    # Its text can still change; its moments do not.
    subject = client.patch(f"/issues/{issue['id']}", json={"subject": "New"}, headers=editor)
    assert subject.status_code == 200, subject.text
    assert client.get(f"/issues/{issue['id']}", headers=editor).json()["send_at"] == planned
    assert _due(ctx, issue["id"]) == due


def test_a_refused_local_time_send_goes_back_to_a_clean_draft(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    ours, others = _readers(ctx)
    issue = new_issue(client, editor)
    day = (utcnow() + timedelta(days=3)).date().isoformat()
    resp = _send(client, editor, issue["id"], {"local_time": "06:00", "date": day})
    assert resp.status_code == 202 and resp.json()["recipients"] == 10, resp.text
    # An edit the start's check refuses: readers lack the attribute and there is no default.
    broken = [{"type": "markdown", "body": "Hello {{ attr.city }}"}]
    assert (
        client.patch(f"/issues/{issue['id']}", json={"blocks": broken}, headers=editor).status_code
        == 200
    )
    first = datetime.fromisoformat(resp.json()["send_at"])
    deliver_at(ctx, first + timedelta(minutes=1))
    refused = client.get(f"/issues/{issue['id']}", headers=editor).json()
    assert refused["status"] == "draft", refused
    assert _frozen_readers(ctx) == []  # nobody is left waiting on a draft

    fixed = [{"type": "markdown", "body": "Hello there"}]
    assert (
        client.patch(f"/issues/{issue['id']}", json={"blocks": fixed}, headers=editor).status_code
        == 200
    )
    # "Send now" to a filter is a send now to that filter: no reader keeps an old moment.
    now = _send(client, editor, issue["id"], {"filter": OURS})
    assert now.status_code == 202 and now.json()["recipients"] == len(ours), now.text
    assert sorted(_frozen_readers(ctx)) == sorted(ours)
    assert not set(_frozen_readers(ctx)) & others
    assert _due(ctx, issue["id"]) == [None] * len(ours)
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["status"] == "sending" and stats["not_yet_due"] == 0, stats
    assert stats["local_time"] is None, stats


def test_a_console_ab_test_goes_to_everyone_its_page_names(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    ours, others = _readers(ctx)
    csrf = (add_account(ctx), sign_in(client))[1]
    issue = new_issue(client, editor)
    # An earlier send to a filter that its start refused: the issue is a draft again.
    later = utcnow() + timedelta(hours=1)
    scheduled = _send(client, editor, issue["id"], {"send_at": later.isoformat(), "filter": OURS})
    assert scheduled.status_code == 202, scheduled.text
    broken = [{"type": "markdown", "body": "Hello {{ attr.city }}"}]
    client.patch(f"/issues/{issue['id']}", json={"blocks": broken}, headers=editor)
    deliver_at(ctx, later + timedelta(minutes=1))
    assert client.get(f"/issues/{issue['id']}", headers=editor).json()["status"] == "draft"
    fixed = [{"type": "markdown", "body": "Hello there"}]
    client.patch(f"/issues/{issue['id']}", json={"blocks": fixed}, headers=editor)

    page = client.get(f"/editor/issues/{issue['id']}/send")
    assert 'data-audience="everyone"' in page.text and "send-ab" in page.text
    started = client.post(
        f"/editor/issues/{issue['id']}/send-ab",
        data={"subject0": "Alpha", "subject1": "Bravo", "sample_percent": "100"}
        | {"csrf_token": csrf},
    )
    assert started.status_code == 200, started.text
    assert sorted(_frozen_readers(ctx)) == sorted(ours | others)


@pytest.mark.parametrize(("wall", "day"), [("23:59", "9999-12-31"), ("00:00", "0001-01-01")])
def test_a_local_day_at_the_calendars_edge_is_refused_alike_everywhere(
    client: TestClient,
    editor: dict[str, str],
    ctx: Context,
    settings: Settings,
    wall: str,
    day: str,
) -> None:
    _readers(ctx)  # Tokyo and New York: one of them falls off the calendar
    csrf = (add_account(ctx), sign_in(client))[1]
    issue = new_issue(client, editor)
    api = _send(client, editor, issue["id"], {"local_time": wall, "date": day})
    assert api.status_code == 422, api.text
    message = api.json()["detail"]
    assert message.startswith("date: ") and "9999-12-30" in message, message

    asked = client.get(
        f"/editor/issues/{issue['id']}/send-local", params={"local_time": wall, "local_date": day}
    )
    assert asked.status_code == 422 and message in html.unescape(asked.text)
    posted = client.post(
        f"/editor/issues/{issue['id']}/send-local",
        data={"local_time": wall, "local_date": day, "csrf_token": csrf},
    )
    assert posted.status_code == 422 and message in html.unescape(posted.text)

    args = ["issues", "send", str(issue["id"]), "--local-time", wall, "--date", day]
    cli = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli.returncode == 2 and cli.stderr.strip() == f"error: {message}", cli.stderr
    assert _frozen_readers(ctx) == []
    assert client.get(f"/issues/{issue['id']}", headers=editor).json()["status"] == "draft"
