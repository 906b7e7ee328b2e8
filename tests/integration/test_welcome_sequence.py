"""The welcome email is a built-in one-step sequence per newsletter (issue 20): a ledger row in
the reader's deliveries, greeting them by name and reading the newsletter's name; editors see
it among the sequences and can pause it, not delete it; the off-switch keeps readers out."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.automations.sequences.scheduler import tick
from app.context import Context
from app.db import session_scope
from app.models import SequenceReader, Subscriber
from tests.helpers import run_worker
from tests.smtp_server import SMTPTestServer

DEFAULT_NAME = "The AI Morning Post"


def confirm(client: TestClient, ctx: Context, email: str, **fields: Any) -> int:
    """Sign up (JSON), confirm twice with the emailed token; return the subscriber id."""
    resp = client.post("/subscribe", json={"email": email, **fields})
    assert resp.status_code in (200, 201, 202), resp.text
    with session_scope(ctx.sessions) as session:
        row = session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        token = ctx.tokens.confirm_token(row.id, row.email)
    assert client.post(f"/confirm/{token}").status_code == 200
    assert client.post(f"/confirm/{token}").status_code == 200  # twice: still one welcome
    return row.id


def texts(msg: EmailMessage) -> tuple[str, str]:
    """Return the (html, text) parts of a message, whitespace collapsed."""
    html, text = msg.get_body(("html",)), msg.get_body(("plain",))
    assert html is not None and text is not None
    return " ".join(html.get_content().split()), " ".join(text.get_content().split())


def welcome_of(smtp_server: SMTPTestServer, count: int, to: str) -> EmailMessage:
    """Wait for `count` messages and return the welcome sent to `to`."""
    received = smtp_server.handler.wait_for(count)
    found = [
        r.message()
        for r in received
        if r.rcpt_tos == (to,) and str(r.message()["Subject"]).startswith("Welcome to")
    ]
    assert len(found) == 1, [str(r.message()["Subject"]) for r in received]
    return found[0]


def builtin(client: TestClient, editor: dict[str, str]) -> list[dict[str, Any]]:
    """Return the built-in sequences GET /sequences lists."""
    return [s for s in client.get("/sequences", headers=editor).json() if s["builtin"]]


def test_the_welcome_greets_by_name_and_is_a_delivery_of_a_built_in_sequence(
    client: TestClient, ctx: Context, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    sub_id = confirm(client, ctx, "wanda@example.org", name="Wanda <Maximoff>")
    run_worker(ctx)
    welcome = welcome_of(smtp_server, 2, "wanda@example.org")
    assert str(welcome["Subject"]) == f"Welcome to {DEFAULT_NAME}"
    html, text = texts(welcome)
    assert "Dear Wanda <Maximoff>," in text
    assert "Dear Wanda &lt;Maximoff&gt;," in html and "<Maximoff>" not in html
    assert f"{DEFAULT_NAME} arrives in this inbox each morning" in text
    assert "{{" not in html + text and "MPX" not in html + text
    (seq,) = builtin(client, editor)
    shown = (seq["builtin"], seq["newsletter"], seq["trigger"])
    assert shown == ("welcome", "default", "confirmed")
    assert [(s["after"], s["at"]) for s in seq["steps"]] == [("PT0S", None)]
    # A delivery like any other: in the reader's log, on the step's carrier issue.
    log = client.get(f"/subscribers/{sub_id}/deliveries", headers=editor).json()["items"]
    assert [(d["issue_id"], d["status"]) for d in log] == [(seq["steps"][0]["carrier"], "sent")]
    stats = client.get(f"/sequences/{seq['id']}/stats", headers=editor).json()
    assert stats["steps"][0]["sent"] == 1
    # Built in: it cannot be deleted (the next confirmation would make it again).
    assert client.delete(f"/sequences/{seq['id']}", headers=editor).status_code == 409


def test_a_reader_without_a_name_is_greeted_all_the_same(
    client: TestClient, ctx: Context, smtp_server: SMTPTestServer
) -> None:
    confirm(client, ctx, "anon@example.org")
    run_worker(ctx)
    _, text = texts(welcome_of(smtp_server, 2, "anon@example.org"))
    assert "Dear reader," in text


def test_editors_can_pause_the_welcome_and_resuming_sends_what_fell_due(
    client: TestClient, ctx: Context, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    confirm(client, ctx, "first@example.org")
    run_worker(ctx)
    welcome_of(smtp_server, 2, "first@example.org")
    (seq,) = builtin(client, editor)
    paused = client.patch(f"/sequences/{seq['id']}", json={"status": "paused"}, headers=editor)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    confirm(client, ctx, "second@example.org")
    tick(ctx)
    run_worker(ctx)
    got = smtp_server.handler.wait_for(3)
    assert sorted(str(r.message()["Subject"]) for r in got).count(f"Welcome to {DEFAULT_NAME}") == 1
    client.patch(f"/sequences/{seq['id']}", json={"status": "active"}, headers=editor)
    tick(ctx)
    run_worker(ctx)
    welcome_of(smtp_server, 4, "second@example.org")


def test_the_off_switch_keeps_readers_out_of_the_welcome(
    client: TestClient, ctx: Context, smtp_server: SMTPTestServer
) -> None:
    ctx.settings.welcome_email = False
    confirm(client, ctx, "quiet@example.org")
    ctx.settings.welcome_email = True  # turned on again later: no late welcome
    tick(ctx)
    run_worker(ctx)
    subjects = [str(r.message()["Subject"]) for r in smtp_server.handler.wait_for(1)]
    assert subjects == [f"Confirm your subscription to {DEFAULT_NAME}"]
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(func.count()).select_from(SequenceReader)) == 0


def test_confirming_newsletter_b_gives_bs_welcome_not_as(
    client: TestClient, ctx: Context, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    made = client.post("/newsletters", json={"slug": "robots", "name": "Robots"}, headers=editor)
    assert made.status_code == 201, made.text
    confirm(client, ctx, "rob@example.org", name="Rob", newsletters=["robots"])
    tick(ctx)
    run_worker(ctx)
    welcome = welcome_of(smtp_server, 2, "rob@example.org")
    assert str(welcome["Subject"]) == "Welcome to Robots"
    _, text = texts(welcome)
    assert "Dear Rob," in text and "Robots arrives in this inbox" in text
    assert [(s["newsletter"], s["builtin"]) for s in builtin(client, editor)] == [
        ("robots", "welcome")
    ]
