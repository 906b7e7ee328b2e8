"""Local-time sends (issue 12, item 1): each reader at 06:00 in their own zone, one frozen list.

The worker takes a clock; the test moves it through the day and checks who has the issue.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient

from app.context import Context
from app.models import utcnow
from tests.helpers import add_subscribers, new_issue
from tests.local_time_support import ZONES, deliver_at, local_readers
from tests.smtp_server import SMTPTestServer


def _got(smtp_server: SMTPTestServer) -> set[str]:
    return {r.rcpt_tos[0] for r in smtp_server.handler.received}


def test_each_reader_gets_it_at_six_in_their_own_zone(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    local_readers(ctx)
    day = (utcnow() + timedelta(days=3)).date()  # every moment is still ahead
    issue = new_issue(client, editor)
    body = {"local_time": "06:00", "date": day.isoformat()}
    r = client.post(f"/issues/{issue['id']}/send", json=body, headers=editor)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "scheduled" and r.json()["recipients"] == 4
    # A second click is a 409 whatever the status, scheduled included: never twice.
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 409
    assert client.post(f"/issues/{issue['id']}/send", json=body, headers=editor).status_code == 409
    # A reader who joins after the send is not on the frozen list.
    add_subscribers(ctx, 1, domain="late.example")

    def at(zone_offset_hours: int) -> datetime:
        """06:00 local on `day` for a zone this many hours east of UTC, plus a minute."""
        local_six = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
        return local_six - timedelta(hours=zone_offset_hours) + timedelta(minutes=1)

    tokyo, berlin, utc_six, new_york = at(9), at(1), at(0), at(-5)  # December: no DST
    deliver_at(ctx, tokyo - timedelta(minutes=2))
    assert _got(smtp_server) == set()  # nobody's morning yet

    deliver_at(ctx, tokyo)
    assert _got(smtp_server) == {"tokyo@example.org"}
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["status"] == "sending" and stats["sent"] == 1
    assert stats["pending"] == 3 and stats["not_yet_due"] == 3  # waiting for their mornings

    deliver_at(ctx, berlin)
    assert _got(smtp_server) == {"tokyo@example.org", "berlin@example.org"}
    deliver_at(ctx, utc_six)
    assert "plain@example.org" in _got(smtp_server)
    assert "ny@example.org" not in _got(smtp_server)
    deliver_at(ctx, new_york)
    assert _got(smtp_server) == set(ZONES)
    assert len(smtp_server.handler.received) == 4  # one copy each, nobody else
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["status"] == "sent" and stats["sent"] == 4 and stats["recipients"] == 4


def test_readers_whose_moment_passed_get_it_at_once(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    local_readers(ctx)
    issue = new_issue(client, editor)
    yesterday = (utcnow() - timedelta(days=1)).date().isoformat()
    r = client.post(
        f"/issues/{issue['id']}/send",
        json={"local_time": "06:00", "date": yesterday},
        headers=editor,
    )
    assert r.status_code == 202 and r.json()["status"] == "sending", r.text
    deliver_at(ctx, utcnow())
    assert _got(smtp_server) == set(ZONES)


def test_cancel_stops_every_wave_and_bad_input_is_a_422(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    local_readers(ctx)
    issue = new_issue(client, editor)
    day = (date.today() + timedelta(days=5)).isoformat()
    for bad in (
        {"local_time": "06:00"},
        {"date": day},
        {"local_time": "25:00", "date": day},
        {"local_time": "06:00", "date": day, "send_at": "2099-01-01T00:00:00Z"},
        {"local_time": "06:00+02:00", "date": day},
    ):
        r = client.post(f"/issues/{issue['id']}/send", json=bad, headers=editor)
        assert r.status_code == 422, (bad, r.text)
    r = client.post(
        f"/issues/{issue['id']}/send", json={"local_time": "06:00", "date": day}, headers=editor
    )
    assert r.status_code == 202
    assert client.post(f"/issues/{issue['id']}/cancel", headers=editor).status_code == 200
    deliver_at(ctx, utcnow() + timedelta(days=10))
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["cancelled"] == 4 and stats["sent"] == 0
    assert smtp_server.handler.received == []
