"""Several newsletters: the API, and that an issue of one never reaches the readers of another."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.audience.newsletters import leave, set_subscription
from app.context import Context
from app.db import session_scope
from app.models import (
    DEFAULT_NEWSLETTER_ID,
    Delivery,
    DeliveryStatus,
    Issue,
    Newsletter,
    Subscriber,
    SubscriptionStatus,
    utcnow,
)
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer


def _newsletter(client: TestClient, editor: dict[str, str], slug: str, **fields: str) -> int:
    resp = client.post(
        "/newsletters", json={"slug": slug, "name": slug.title(), **fields}, headers=editor
    )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _join(ctx: Context, ids: list[int], newsletter_id: int) -> None:
    with session_scope(ctx.sessions) as session:
        for sid in ids:
            set_subscription(session, sid, newsletter_id, SubscriptionStatus.active, utcnow())


def test_the_api_creates_lists_and_edits_newsletters_with_settings_as_fallback(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    listed = client.get("/newsletters", headers=editor).json()
    assert [n["slug"] for n in listed] == ["default"]
    assert listed[0]["name"] == ctx.settings.newsletter_name
    assert listed[0]["from"] == str(ctx.settings.sender)
    assert client.get("/newsletters").status_code == 401

    nid = _newsletter(
        client, editor, "robots", tagline="Machines weekly", reply_to="ed@example.org"
    )
    one = client.get(f"/newsletters/{nid}", headers=editor).json()
    assert one["name"] == "Robots" and one["tagline"] == "Machines weekly"
    assert one["reply_to"] == "ed@example.org"
    assert one["from"] == str(ctx.settings.sender)  # not given: the environment's FROM
    assert "robots" in one["list_id"] and one["list_id"] != listed[0]["list_id"]
    assert "from" in one["inherited"]

    changed = client.patch(
        f"/newsletters/{nid}", json={"from": "Robots <robots@example.org>"}, headers=editor
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["from"] == "Robots <robots@example.org>"
    back = client.patch(f"/newsletters/{nid}", json={"from": None}, headers=editor).json()
    assert back["from"] == str(ctx.settings.sender)

    # Bad input: a clear 4xx, nothing stored.
    assert (
        client.post(
            "/newsletters", json={"slug": "robots", "name": "X"}, headers=editor
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/newsletters", json={"slug": "Bad Slug", "name": "X"}, headers=editor
        ).status_code
        == 422
    )
    evil = client.patch(
        f"/newsletters/{nid}", json={"reply_to": "a@b.org\r\nBcc: x@y.org"}, headers=editor
    )
    assert evil.status_code == 422
    assert client.get("/newsletters/999", headers=editor).status_code == 404
    assert (
        client.post(
            "/issues",
            json={
                "subject": "S",
                "newsletter": "nope",
                "blocks": [{"type": "markdown", "body": "x"}],
            },
            headers=editor,
        ).status_code
        == 422
    )


def test_readers_of_a_never_get_bs_issue(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    a_only = add_subscribers(ctx, 3, domain="a.example.org")
    b_only = add_subscribers(ctx, 2, domain="b.example.org")
    both = add_subscribers(ctx, 2, domain="ab.example.org")
    b = _newsletter(client, editor, "b-list")
    _join(ctx, b_only + both, b)
    # b_only leave the default newsletter (A): they take B alone.
    with session_scope(ctx.sessions) as session:
        for sid in b_only:
            set_subscription(
                session, sid, DEFAULT_NEWSLETTER_ID, SubscriptionStatus.unsubscribed, utcnow()
            )

    issue_b = new_issue(client, editor, slug="for-b", subject="Bee", newsletter="b-list")
    assert issue_b["newsletter_id"] == b
    issue_a = new_issue(client, editor, slug="for-a", subject="Ay")
    assert issue_a["newsletter_id"] == DEFAULT_NEWSLETTER_ID

    sent_b = client.post(f"/issues/{issue_b['id']}/send", headers=editor)
    assert sent_b.status_code == 202, sent_b.text
    assert sent_b.json()["recipients"] == 4
    sent_a = client.post(f"/issues/{issue_a['id']}/send", headers=editor)
    assert sent_a.json()["recipients"] == 5
    run_worker(ctx)
    got = smtp_server.handler.wait_for(9)
    by_subject: dict[str, list[str]] = {}
    for r in got:
        by_subject.setdefault(str(r.message()["Subject"]), []).extend(r.rcpt_tos)
    emails = _emails(ctx)
    assert sorted(by_subject["Bee"]) == sorted(emails[i] for i in b_only + both)
    assert sorted(by_subject["Ay"]) == sorted(emails[i] for i in a_only + both)
    assert len(got) == 9


def _emails(ctx: Context) -> dict[int, str]:
    with session_scope(ctx.sessions) as session:
        return dict(session.execute(select(Subscriber.id, Subscriber.email)).all())  # type: ignore[arg-type]


def test_a_scheduled_send_started_by_the_worker_keeps_to_its_newsletter(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 3, domain="a.example.org")
    b_readers = add_subscribers(ctx, 2, domain="b.example.org")
    b = _newsletter(client, editor, "b-list")
    _join(ctx, b_readers, b)
    issue = new_issue(client, editor, slug="later", newsletter="b-list")
    when = (utcnow() + timedelta(seconds=1)).isoformat()
    assert (
        client.post(
            f"/issues/{issue['id']}/send", json={"send_at": when}, headers=editor
        ).status_code
        == 202
    )
    with session_scope(ctx.sessions) as session:
        session.get(Issue, issue["id"]).send_at = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
    run_worker(ctx)
    got = smtp_server.handler.wait_for(2)
    assert sorted(a for r in got for a in r.rcpt_tos) == [
        "reader0@b.example.org",
        "reader1@b.example.org",
    ]
    with session_scope(ctx.sessions) as session:
        assert session.get(Issue, issue["id"]).recipients == 2  # type: ignore[union-attr]


def test_leaving_a_during_its_send_cancels_the_copies_not_yet_handed_out(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    readers = add_subscribers(ctx, 3)
    b = _newsletter(client, editor, "b-list")
    _join(ctx, readers, b)
    issue_a = new_issue(client, editor, slug="a-now")
    issue_b = new_issue(client, editor, slug="b-now", newsletter="b-list")
    assert client.post(f"/issues/{issue_a['id']}/send", headers=editor).json()["recipients"] == 3
    assert client.post(f"/issues/{issue_b['id']}/send", headers=editor).json()["recipients"] == 3
    with session_scope(ctx.sessions) as session:
        assert leave(session, readers[0], DEFAULT_NEWSLETTER_ID, utcnow()) == 1
    with session_scope(ctx.sessions) as session:
        status = dict(
            session.execute(
                select(Delivery.issue_id, Delivery.status).where(
                    Delivery.subscriber_id == readers[0]
                )
            ).all()
        )
        assert status == {
            issue_a["id"]: DeliveryStatus.cancelled,
            issue_b["id"]: DeliveryStatus.pending,
        }
        assert session.scalar(select(Newsletter.slug).where(Newsletter.id == b)) == "b-list"


def test_the_email_carries_its_newsletters_masthead_and_one_click_leaves_only_it(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    [reader] = add_subscribers(ctx, 1)
    b = _newsletter(
        client,
        editor,
        "robots",
        tagline="Machines, weekly",
        **{"from": "Robot Desk <robots@example.net>"},
        reply_to="editor@example.net",
        postal_address="1 Robot Road, Springfield",
        list_id="Robots <robots.example.net>",
    )
    _join(ctx, [reader], b)
    issue = new_issue(client, editor, slug="beep", subject="Beep", newsletter="robots")
    preview = " ".join(client.get(f"/issues/{issue['id']}/preview", headers=editor).text.split())
    assert "1 Robot Road, Springfield" in preview and "?newsletter=robots" in preview
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).json()["recipients"] == 1
    run_worker(ctx)
    [got] = smtp_server.handler.wait_for(1)
    mail = got.message()
    assert mail["From"] == "Robot Desk <robots@example.net>"
    assert mail["Reply-To"] == "editor@example.net"
    assert mail["List-Id"] == "Robots <robots.example.net>"
    # Long lines are folded on the wire: compare words, not layout.
    html = " ".join(mail.get_body(("html",)).get_content().split())  # type: ignore[union-attr]
    text = " ".join(mail.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    for shown in ("Robots", "1 Robot Road, Springfield"):
        assert shown in html and shown in text
    assert "Machines, weekly" in text  # the HTML shows the tagline in a masthead block only
    url = str(mail["List-Unsubscribe"]).split("<", 1)[1].split(">", 1)[0]
    assert url.endswith("?newsletter=robots")
    path = url.removeprefix(ctx.settings.base_url)
    left = client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert left.status_code == 200
    shown_reader = client.get(f"/subscribers/{reader}", headers=editor).json()
    assert shown_reader["status"] == "active"
    assert shown_reader["newsletters"] == {"default": "active", "robots": "unsubscribed"}
