"""Welcome email after confirming, the postal address in every footer, the preheader spacer."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.models import Delivery, OutboxMessage, Subscriber
from app.rendering.blocks import parse_blocks
from app.rendering.compile import PREHEADER_SPACER
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer

POSTAL = "The AI Morning Post, 1 Fleet Street, London EC4Y 1AA, UK"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with a postal address."""
    return settings.model_copy(update={"postal_address": POSTAL})


def parts(msg: EmailMessage) -> tuple[str, str]:
    """Return the (html, text) parts of a message."""
    html = msg.get_body(("html",))
    text = msg.get_body(("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content()


def sign_up_and_confirm(client: TestClient, ctx: Context, email: str) -> int:
    """Sign up by form, confirm with the emailed token; return the subscriber id."""
    assert client.post("/subscribe", data={"email": email}).status_code == 200
    with session_scope(ctx.sessions) as session:
        row = session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        token = ctx.tokens.confirm_token(row.id, row.email)
    assert client.post(f"/confirm/{token}").status_code == 200
    assert client.post(f"/confirm/{token}").status_code == 200  # twice: still one welcome
    return row.id


def test_confirming_sends_one_welcome_with_list_links(
    client: TestClient, ctx: Context, smtp_server: SMTPTestServer
) -> None:
    sub_id = sign_up_and_confirm(client, ctx, "wanda@example.org")
    run_worker(ctx)
    received = smtp_server.handler.wait_for(2)
    subjects = sorted(str(r.message()["Subject"]) for r in received)
    assert subjects == [
        "Confirm your subscription to The AI Morning Post",
        "Welcome to The AI Morning Post",
    ]
    welcome = next(r.message() for r in received if "Welcome" in str(r.message()["Subject"]))
    html, text = parts(welcome)
    with session_scope(ctx.sessions) as session:
        nonce = session.get_one(Subscriber, sub_id).token_nonce
    unsubscribe = f"/unsubscribe/{ctx.tokens.unsubscribe_token(sub_id, nonce)}"
    assert unsubscribe in html and unsubscribe in text
    assert unsubscribe in str(welcome["List-Unsubscribe"])
    assert client.get(unsubscribe).status_code == 200
    # The link names this very reader: it works, and their page shows their masked address.
    assert "w•••@example.org" in client.get(unsubscribe).text
    # One welcome: the confirmation went through the outbox, the welcome through the ledger
    # (the built-in welcome sequence, issue 20), once although the link was opened twice.
    with session_scope(ctx.sessions) as session:
        kinds = session.scalars(
            select(OutboxMessage.kind).where(OutboxMessage.subscriber_id == sub_id)
        ).all()
        welcomes = session.scalars(
            select(Delivery.status).where(Delivery.subscriber_id == sub_id)
        ).all()
    assert sorted(kinds) == ["confirm"] and welcomes == ["sent"]


def test_no_welcome_when_turned_off(
    ctx: Context, client: TestClient, smtp_server: SMTPTestServer
) -> None:
    ctx.settings.welcome_email = False
    sign_up_and_confirm(client, ctx, "quiet@example.org")
    run_worker(ctx)
    subjects = [str(r.message()["Subject"]) for r in smtp_server.handler.wait_for(1)]
    assert subjects == ["Confirm your subscription to The AI Morning Post"]


def test_postal_address_in_every_email(
    client: TestClient, ctx: Context, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    sign_up_and_confirm(client, ctx, "pat@example.org")
    add_subscribers(ctx, 1)
    issue = new_issue(client, editor)
    assert client.post(f"/issues/{issue['id']}/send", json={}, headers=editor).status_code == 202
    run_worker(ctx)
    received = smtp_server.handler.wait_for(4)
    assert len(received) == 4  # confirm, welcome, the issue to two readers
    for r in received:
        html, text = parts(r.message())
        assert POSTAL in " ".join(html.split()), r.message()["Subject"]
        assert POSTAL in " ".join(text.split()), r.message()["Subject"]


def test_check_warns_without_postal_address(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    issue = new_issue(client, editor)
    with_address = client.get(f"/issues/{issue['id']}/check", headers=editor).json()
    assert "no_postal_address" not in {f["code"] for f in with_address["findings"]}
    ctx.settings.postal_address = ""
    without = client.get(f"/issues/{issue['id']}/check", headers=editor).json()
    finding = next(f for f in without["findings"] if f["code"] == "no_postal_address")
    assert finding["level"] == "warning" and "MORNINGPOST_POSTAL_ADDRESS" in finding["message"]
    assert without["ok"] is True  # a warning, not a blocker


def test_preheader_is_followed_by_a_spacer(ctx: Context) -> None:
    compiled = ctx.renderer.compile_issue(
        subject="S",
        preheader="Today in brief",
        slug="s",
        blocks=parse_blocks([{"type": "masthead"}, {"type": "markdown", "body": "Hello"}]),
    )
    hidden = re.search(r'<div\s+style="display:none;[^"]*">(.*?)</div>', compiled.html, re.S)
    assert hidden is not None
    content = hidden[1].replace("\n", " ")
    assert content.startswith("Today in brief")
    # premailer turns the entities into characters: U+034F, ZWNJ and NBSP, ninety times.
    assert content.count("\u034f\u200c\u00a0") == PREHEADER_SPACER.count("&#847;")
    assert "Hello" not in content


def test_check_reads_the_newsletters_own_postal_address_and_from(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    """An address set on the newsletter (the console's settings form) satisfies the check."""
    ctx.settings.postal_address = ""
    issue = new_issue(client, editor)
    before = client.get(f"/issues/{issue['id']}/check", headers=editor).json()
    assert "no_postal_address" in {f["code"] for f in before["findings"]}
    default = client.get("/newsletters", headers=editor).json()
    rows = default["items"] if isinstance(default, dict) else default
    newsletter_id = next(n["id"] for n in rows if n["slug"] == "default" or n.get("is_default"))
    changed = client.patch(
        f"/newsletters/{newsletter_id}",
        json={"postal_address": "1 Dusk Road, Bath", "from": "Desk <desk@morningpost.test>"},
        headers=editor,
    )
    assert changed.status_code == 200, changed.text
    after = client.get(f"/issues/{issue['id']}/check", headers=editor).json()
    codes = {f["code"] for f in after["findings"]}
    assert "no_postal_address" not in codes and "default_from" not in codes
