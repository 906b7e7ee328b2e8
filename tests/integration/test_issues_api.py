"""The editors' issue API, row by row of the contract, against a real database and SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.context import Context
from app.issues.dispatch import dispatch
from app.tokens import TokenService
from tests.helpers import SIMPLE_BLOCKS, add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer

STATS_KEYS = {"recipients", "pending", "sending", "sent", "retry", "failed", "unknown", "cancelled"}

EDITOR_ROUTES = [
    ("POST", "/issues"),
    ("GET", "/issues"),
    ("GET", "/issues/1"),
    ("PATCH", "/issues/1"),
    ("DELETE", "/issues/1"),
    ("GET", "/issues/1/preview"),
    ("POST", "/issues/1/test"),
    ("POST", "/issues/1/send"),
    ("POST", "/issues/1/cancel"),
    ("GET", "/issues/1/stats"),
    ("GET", "/issues/1/check"),
    ("POST", "/issues/1/pause"),
    ("POST", "/issues/1/resume"),
    # The subscriber routes have the same test in test_subscribers_api.py.
    ("GET", "/suppressions"),
    ("POST", "/suppressions"),
    ("DELETE", "/suppressions/1"),
]


@pytest.mark.parametrize(("method", "path"), EDITOR_ROUTES)
def test_editor_routes_need_a_valid_token(client: TestClient, method: str, path: str) -> None:
    assert client.request(method, path, json={}).status_code == 401
    bad = {"Authorization": "Bearer mp_not-a-real-token"}
    resp = client.request(method, path, json={}, headers=bad)
    assert resp.status_code == 401
    assert resp.json()["detail"]


def test_create_list_get(client: TestClient, editor: dict[str, str]) -> None:
    issue = new_issue(client, editor, preheader="Today in AI")
    assert issue["status"] == "draft"
    assert issue["slug"] == "the-ai-morning-post"
    again = new_issue(client, editor)
    assert again["slug"] == "the-ai-morning-post-2"  # generated slugs never collide
    listed = client.get("/issues", headers=editor).json()
    assert [i["id"] for i in listed] == [again["id"], issue["id"]]
    one = client.get(f"/issues/{issue['id']}", headers=editor).json()
    assert one["preheader"] == "Today in AI"
    assert client.get("/issues/999999", headers=editor).status_code == 404


def test_explicit_slug_conflict(client: TestClient, editor: dict[str, str]) -> None:
    new_issue(client, editor, slug="monday")
    resp = client.post(
        "/issues", json={"subject": "x", "slug": "monday", "blocks": SIMPLE_BLOCKS}, headers=editor
    )
    assert resp.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"subject": "x", "blocks": [{"type": "hologram", "title": "?"}]},
        {"subject": "x", "blocks": [{"type": "lead", "body": "no title"}]},
        {"subject": "line\r\nBcc: victim@example.org", "blocks": SIMPLE_BLOCKS},
        {"subject": "x", "blocks": []},
        {"subject": "x", "slug": "Not A Slug", "blocks": SIMPLE_BLOCKS},
    ],
)
def test_create_refuses_bad_input(client: TestClient, editor: dict[str, str], body: dict) -> None:
    resp = client.post("/issues", json=body, headers=editor)
    assert resp.status_code == 422
    assert resp.json()["detail"]


def test_patch_and_delete_only_while_editable(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    issue = new_issue(client, editor)
    path = f"/issues/{issue['id']}"
    resp = client.patch(path, json={"subject": "Better subject"}, headers=editor)
    assert resp.status_code == 200 and resp.json()["subject"] == "Better subject"
    add_subscribers(ctx, 1)
    assert client.post(f"{path}/send", headers=editor).status_code == 202
    assert client.patch(path, json={"subject": "late"}, headers=editor).status_code == 409
    assert client.delete(path, headers=editor).status_code == 409
    draft = new_issue(client, editor)
    assert client.delete(f"/issues/{draft['id']}", headers=editor).status_code == 204
    assert client.get(f"/issues/{draft['id']}", headers=editor).status_code == 404


def test_preview_is_the_email_with_working_links(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    issue = new_issue(client, editor)
    resp = client.get(f"/issues/{issue['id']}/preview", headers=editor)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert "Hello readers" in html
    token = ctx.tokens.unsubscribe_token(0)
    assert f"/unsubscribe/{token}" in html
    assert "MPX" not in html  # no placeholder leaks into what a person sees


def test_test_send_is_not_a_delivery(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    issue = new_issue(client, editor)
    resp = client.post(
        f"/issues/{issue['id']}/test", json={"to": ["Editor@Example.org"]}, headers=editor
    )
    assert resp.status_code == 202
    run_worker(ctx)
    [copy] = smtp_server.handler.received
    assert copy.rcpt_tos == ("editor@example.org",)
    assert copy.message()["Subject"].startswith("[TEST] ")
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["recipients"] == 0 and stats["sent"] == 0
    assert client.get(f"/issues/{issue['id']}", headers=editor).json()["status"] == "draft"
    bad = client.post(f"/issues/{issue['id']}/test", json={"to": ["nope"]}, headers=editor)
    assert bad.status_code == 422


def test_send_freezes_recipients_and_never_doubles(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 5)
    add_subscribers(ctx, 2, status="pending", domain="pending.example.org")
    issue = new_issue(client, editor)
    resp = client.post(f"/issues/{issue['id']}/send", headers=editor)
    assert resp.status_code == 202
    assert resp.json() == {"id": issue["id"], "status": "sending", "recipients": 5, "send_at": None}
    add_subscribers(ctx, 1, domain="late.example.org")  # joined after the freeze
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 409
    run_worker(ctx)
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 409
    run_worker(ctx)
    received = sorted(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert received == [f"reader{i}@example.org" for i in range(5)]
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert set(stats) >= STATS_KEYS
    assert stats["recipients"] == 5 and stats["sent"] == 5
    assert client.get(f"/issues/{issue['id']}", headers=editor).json()["status"] == "sent"


def test_send_with_a_past_send_at_starts_now(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    add_subscribers(ctx, 2)
    issue = new_issue(client, editor)
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    resp = client.post(f"/issues/{issue['id']}/send", json={"send_at": past}, headers=editor)
    assert resp.status_code == 202
    assert resp.json()["status"] == "sending" and resp.json()["recipients"] == 2


def test_scheduled_send_starts_from_dispatch_once(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 3)
    issue = new_issue(client, editor)
    soon = datetime.now(UTC) + timedelta(minutes=10)
    resp = client.post(
        f"/issues/{issue['id']}/send", json={"send_at": soon.isoformat()}, headers=editor
    )
    assert resp.status_code == 202 and resp.json()["status"] == "scheduled"
    assert dispatch(ctx) == []  # not due yet
    later = soon + timedelta(seconds=1)
    assert dispatch(ctx, now=later) == [issue["id"]]
    assert dispatch(ctx, now=later) == []  # a second cron run starts nothing
    run_worker(ctx)
    assert len(smtp_server.handler.received) == 3
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 409


def test_cancel_scheduled_and_sending(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 4)
    scheduled = new_issue(client, editor)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    client.post(f"/issues/{scheduled['id']}/send", json={"send_at": future}, headers=editor)
    resp = client.post(f"/issues/{scheduled['id']}/cancel", headers=editor)
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    sending = new_issue(client, editor)
    client.post(f"/issues/{sending['id']}/send", headers=editor)
    assert client.post(f"/issues/{sending['id']}/cancel", headers=editor).status_code == 200
    run_worker(ctx)
    assert smtp_server.handler.received == []
    stats = client.get(f"/issues/{sending['id']}/stats", headers=editor).json()
    assert stats["cancelled"] == 4 and stats["sent"] == 0
    draft = new_issue(client, editor)
    assert client.post(f"/issues/{draft['id']}/cancel", headers=editor).status_code == 409


def test_unsubscribe_link_in_a_sent_issue_works(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    [sub_id] = add_subscribers(ctx, 1)
    issue = new_issue(client, editor)
    client.post(f"/issues/{issue['id']}/send", headers=editor)
    run_worker(ctx)
    msg = smtp_server.handler.received[0].message()
    header = msg["List-Unsubscribe"]
    url = header.split("<", 1)[1].split(">", 1)[0]
    token = url.rsplit("/", 1)[1]
    assert TokenService(ctx.settings.secret_keys, 60).read_unsubscribe_token(token) == sub_id
    resp = client.post(url.replace("http://testserver", ""), data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 200
    again = new_issue(client, editor)
    assert client.post(f"/issues/{again['id']}/send", headers=editor).json()["recipients"] == 0


def test_check_lists_findings_and_a_blocking_one_stops_the_send(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    add_subscribers(ctx, 2)
    good = new_issue(client, editor, preheader="Today in AI")
    report = client.get(f"/issues/{good['id']}/check", headers=editor).json()
    assert report["ok"] is True
    codes = {f["code"] for f in report["findings"]}
    assert "no_preheader" not in codes and "no_unsubscribe_link" not in codes

    broken = [{"type": "links", "title": "Read", "items": [{"title": "x", "url": "https://host"}]}]
    bad = new_issue(client, editor, blocks=broken)
    report = client.get(f"/issues/{bad['id']}/check", headers=editor).json()
    assert report["ok"] is False
    first = report["findings"][0]
    assert first["level"] == "error" and first["code"] == "malformed_link"
    assert any(f["code"] == "no_preheader" for f in report["findings"])
    refused = client.post(f"/issues/{bad['id']}/send", headers=editor)
    assert refused.status_code == 422
    assert "https://host" in refused.json()["detail"]
    stats = client.get(f"/issues/{bad['id']}/stats", headers=editor).json()
    assert stats["recipients"] == 0
    assert client.get(f"/issues/{bad['id']}", headers=editor).json()["status"] == "draft"
