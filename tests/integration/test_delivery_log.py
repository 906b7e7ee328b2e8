"""The per-recipient log (GET /issues/{id}/deliveries, /subscribers/{id}/deliveries) and
POST /issues/{id}/resend-unknown (issue 10, items 2 and 4)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from app.context import Context
from app.db import session_scope
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import HANGUP, SMTPTestServer


def _send(client: TestClient, editor: dict[str, str], ctx: Context) -> int:
    issue = new_issue(client, editor)
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202
    run_worker(ctx)
    return int(issue["id"])


def test_issue_log_pages_filters_and_searches(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 7)
    smtp_server.handler.plan("reader3@example.org", "550 5.1.1 No such user")
    issue_id = _send(client, editor, ctx)

    seen: list[str] = []
    cursor = ""
    while True:
        r = client.get(
            f"/issues/{issue_id}/deliveries", params={"limit": 2, "cursor": cursor}, headers=editor
        )
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [item["email"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(f"reader{i}@example.org" for i in range(7))

    failed = client.get(
        f"/issues/{issue_id}/deliveries", params={"status": "failed"}, headers=editor
    ).json()["items"]
    assert [(i["email"], i["status"]) for i in failed] == [("reader3@example.org", "failed")]
    assert failed[0]["last_reply"].startswith("550 5.1.1")
    assert failed[0]["attempts"] == 1
    assert set(failed[0]) >= {"subscriber_id", "email", "status", "attempts", "last_reply"}

    found = client.get(
        f"/issues/{issue_id}/deliveries", params={"q": "READER5@"}, headers=editor
    ).json()["items"]
    assert [i["email"] for i in found] == ["reader5@example.org"]
    # Bad input is a sentence, not a 500; strangers get 401; an unknown issue 404.
    for params in ({"cursor": "x"}, {"cursor": "9" * 30}, {"status": "nope"}, {"limit": 0}):
        assert (
            client.get(f"/issues/{issue_id}/deliveries", params=params, headers=editor).status_code
            == 422
        )
    assert client.get(f"/issues/{issue_id}/deliveries").status_code == 401
    assert client.get("/issues/999/deliveries", headers=editor).status_code == 404


def test_a_readers_log_spans_issues(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    (sub_id,) = add_subscribers(ctx, 1)
    first, second = _send(client, editor, ctx), _send(client, editor, ctx)
    items = client.get(f"/subscribers/{sub_id}/deliveries", headers=editor).json()["items"]
    assert [(i["issue_id"], i["status"]) for i in items] == [(first, "sent"), (second, "sent")]
    assert client.get("/subscribers/999/deliveries", headers=editor).status_code == 404


def test_log_pages_walk_an_index_not_an_offset(ctx: Context, is_pg: bool) -> None:
    """Page 500 costs what page 1 does: keyset on (issue_id, id), no sort, no OFFSET."""
    if is_pg:
        return  # PostgreSQL's plan depends on table statistics; the index is the same
    with session_scope(ctx.sessions) as session:
        plan = " ".join(
            str(row[-1])
            for row in session.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT deliveries.id FROM deliveries "
                    "LEFT JOIN subscribers ON subscribers.id = deliveries.subscriber_id "
                    "WHERE deliveries.issue_id = 1 AND deliveries.id > 4000 "
                    "ORDER BY deliveries.id LIMIT 51"
                )
            )
        )
    assert "ix_deliveries_issue_id_id" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_resend_unknown_requeues_once(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 3)
    smtp_server.handler.plan("reader1@example.org", HANGUP)
    issue_id = _send(client, editor, ctx)
    stats = client.get(f"/issues/{issue_id}/stats", headers=editor).json()
    assert stats["unknown"] == 1 and stats["status"] == "sent"

    r = client.post(f"/issues/{issue_id}/resend-unknown", headers=editor)
    assert r.status_code == 202 and r.json() == {"requeued": 1}
    run_worker(ctx)
    stats = client.get(f"/issues/{issue_id}/stats", headers=editor).json()
    assert stats["unknown"] == 0 and stats["sent"] == 3 and stats["status"] == "sent"
    # At-least-once, by the editor's choice: that reader may now hold two copies.
    assert smtp_server.handler.attempts["reader1@example.org"] == 2
    assert len(smtp_server.handler.to("reader0@example.org")) == 1
    # Once: a second call finds nothing more to send.
    assert client.post(f"/issues/{issue_id}/resend-unknown", headers=editor).json() == {
        "requeued": 0
    }
