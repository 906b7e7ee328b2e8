"""Saving the preferences page (a new name, say) keeps a newsletter that waits for its
confirmation: its box shows unticked, and the confirmation link still starts it afterwards."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import Subscriber, Webhook, WebhookDelivery


def _reader(ctx: Context) -> Subscriber:
    with session_scope(ctx.sessions) as session:
        row = session.scalars(select(Subscriber).where(Subscriber.email == "ada@example.org")).one()
        session.expunge(row)
        return row


def test_saving_preferences_keeps_a_newsletter_awaiting_confirmation(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    for slug in ("alpha", "beta"):
        made = client.post(
            "/newsletters", json={"slug": slug, "name": slug.upper()}, headers=editor
        )
        assert made.status_code == 201, made.text
    client.post("/subscribe", json={"email": "ada@example.org", "newsletters": ["alpha"]})
    row = _reader(ctx)
    assert client.post(f"/confirm/{ctx.tokens.confirm_token(row.id, row.email)}").status_code == 200
    # Later Ada asks for beta too; its confirmation email is on its way.
    client.post("/subscribe", json={"email": "ada@example.org", "newsletters": ["beta"]})
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["newsletters"] == {"alpha": "active", "beta": "pending"}

    # Meanwhile she renames herself on the preferences page; beta's box is not ticked there.
    token = ctx.tokens.preferences_token(row.id, row.token_nonce)
    page = client.get(f"/preferences/{token}")
    assert 'name="newsletters" value="beta">' in page.text
    saved = client.post(
        f"/preferences/{token}",
        data={
            "action": "save",
            "name": "Ada L.",
            "pause_weeks": "0",
            "timezone": "UTC",
            "newsletters_shown": "1",
            "newsletters": ["alpha"],
        },
    )
    assert saved.status_code == 200, saved.text
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["name"] == "Ada L."
    assert shown["newsletters"] == {"alpha": "active", "beta": "pending"}

    # Then she clicks the link in beta's confirmation email: beta starts.
    assert client.post(f"/confirm/{ctx.tokens.confirm_token(row.id, row.email)}").status_code == 200
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["newsletters"] == {"alpha": "active", "beta": "active"}


def test_unticking_an_active_newsletter_still_leaves_it(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    for slug in ("alpha", "beta"):
        client.post("/newsletters", json={"slug": slug, "name": slug.upper()}, headers=editor)
    client.post("/subscribe", json={"email": "ada@example.org", "newsletters": ["alpha", "beta"]})
    row = _reader(ctx)
    client.post(f"/confirm/{ctx.tokens.confirm_token(row.id, row.email)}")
    token = ctx.tokens.preferences_token(row.id, row.token_nonce)
    saved = client.post(
        f"/preferences/{token}",
        data={
            "action": "save",
            "pause_weeks": "0",
            "timezone": "UTC",
            "newsletters_shown": "1",
            "newsletters": ["beta"],
        },
    )
    assert saved.status_code == 200, saved.text
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["newsletters"] == {"alpha": "unsubscribed", "beta": "active"}


def test_unticking_every_newsletter_leaves_the_list(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    """No box ticked is "unsubscribe from everything", as a one-click link leaving the last
    newsletter is: the reader is unsubscribed (and a webhook told), not left "active"."""
    for slug in ("alpha", "beta"):
        client.post("/newsletters", json={"slug": slug, "name": slug.upper()}, headers=editor)
    with session_scope(ctx.sessions) as session:  # a listener (its delivery is not the point)
        session.add(
            Webhook(
                url="https://hooks.example.org/mp", events=["subscriber.unsubscribed"], secret="s"
            )
        )
    client.post("/subscribe", json={"email": "ada@example.org", "newsletters": ["alpha", "beta"]})
    row = _reader(ctx)
    client.post(f"/confirm/{ctx.tokens.confirm_token(row.id, row.email)}")
    token = ctx.tokens.preferences_token(row.id, row.token_nonce)
    saved = client.post(
        f"/preferences/{token}",
        data={"action": "save", "pause_weeks": "0", "timezone": "UTC", "newsletters_shown": "1"},
    )
    assert saved.status_code == 200, saved.text
    assert "You are not receiving issues at the moment." in saved.text
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["newsletters"] == {"alpha": "unsubscribed", "beta": "unsubscribed"}
    assert shown["status"] == "unsubscribed"
    assert shown["unsubscribed_at"] is not None
    with session_scope(ctx.sessions) as session:
        told = session.scalars(select(WebhookDelivery.event)).all()
    assert told == ["subscriber.unsubscribed"]
