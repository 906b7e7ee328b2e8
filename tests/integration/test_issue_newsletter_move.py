"""PATCH /issues/{id} {"newsletter": slug} moves a draft to another newsletter (issue 19)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from app.audience.newsletters import set_subscription
from app.context import Context
from app.db import session_scope
from app.models import DEFAULT_NEWSLETTER_ID, SubscriptionStatus, utcnow
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer


def _newsletter(client: TestClient, editor: dict[str, str], slug: str) -> int:
    resp = client.post("/newsletters", json={"slug": slug, "name": slug.title()}, headers=editor)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _readers(ctx: Context, count: int, newsletter_id: int, domain: str) -> set[str]:
    ids = add_subscribers(ctx, count, domain=domain)
    with session_scope(ctx.sessions) as session:
        for sid in ids:
            set_subscription(session, sid, newsletter_id, SubscriptionStatus.active, utcnow())
    return {f"reader{i}@{domain}" for i in range(count)}


def test_a_draft_moves_to_another_newsletter_and_goes_to_its_readers_only(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    a = _newsletter(client, editor, "alpha")
    b = _newsletter(client, editor, "bravo")
    _readers(ctx, 3, a, "a.example.org")
    of_b = _readers(ctx, 4, b, "b.example.org")
    issue = new_issue(client, editor, newsletter="alpha")
    assert issue["newsletter_id"] == a

    moved = client.patch(f"/issues/{issue['id']}", json={"newsletter": "bravo"}, headers=editor)
    assert moved.status_code == 200, moved.text
    assert moved.json()["newsletter_id"] == b
    assert moved.json()["version"] == issue["version"] + 1
    assert client.get(f"/issues/{issue['id']}", headers=editor).json()["newsletter_id"] == b

    sent = client.post(f"/issues/{issue['id']}/send", headers=editor)
    assert sent.status_code == 202 and sent.json()["recipients"] == 4
    run_worker(ctx)
    got = {r.rcpt_tos[0] for r in smtp_server.handler.received}
    assert got == of_b, "the readers of the newsletter it moved to, and no one else"

    # Once it is sending or sent it stays where it was sent.
    late = client.patch(f"/issues/{issue['id']}", json={"newsletter": "alpha"}, headers=editor)
    assert late.status_code == 409, late.text
    assert client.get(f"/issues/{issue['id']}", headers=editor).json()["newsletter_id"] == b


def test_an_unknown_slug_is_422_a_started_send_409_and_null_is_the_default(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _newsletter(client, editor, "alpha")
    add_subscribers(ctx, 2)
    draft = new_issue(client, editor, newsletter="alpha")

    unknown = client.patch(f"/issues/{draft['id']}", json={"newsletter": "nope"}, headers=editor)
    assert unknown.status_code == 422 and "nope" in unknown.text

    home = client.patch(f"/issues/{draft['id']}", json={"newsletter": None}, headers=editor)
    assert home.status_code == 200 and home.json()["newsletter_id"] == DEFAULT_NEWSLETTER_ID

    sending = new_issue(client, editor, slug="second")
    assert client.post(f"/issues/{sending['id']}/send", headers=editor).status_code == 202
    refused = client.patch(f"/issues/{sending['id']}", json={"newsletter": "alpha"}, headers=editor)
    assert refused.status_code == 409, refused.text
    assert client.get(f"/issues/{sending['id']}", headers=editor).json()["newsletter_id"] == (
        DEFAULT_NEWSLETTER_ID
    )

    # A scheduled send was checked against its newsletter's readers: cancel it to move it.
    later = new_issue(client, editor, slug="third")
    when = (utcnow() + timedelta(days=1)).isoformat()
    scheduled = client.post(f"/issues/{later['id']}/send", json={"send_at": when}, headers=editor)
    assert scheduled.status_code == 202, scheduled.text
    kept = client.patch(f"/issues/{later['id']}", json={"newsletter": "alpha"}, headers=editor)
    assert kept.status_code == 409 and "draft" in kept.text
    # Naming the newsletter it already has changes nothing and is no conflict.
    same = client.patch(
        f"/issues/{later['id']}", json={"newsletter": "default", "subject": "Later"}, headers=editor
    )
    assert same.status_code == 200 and same.json()["subject"] == "Later"
