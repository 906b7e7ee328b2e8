"""Taking several newsletters: one sign-up, one confirmation, and leaving one keeps the others."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import OutboxKind, OutboxMessage, Subscriber, Suppression
from app.tokens import hash_secret
from tests.helpers import new_issue


def _newsletters(client: TestClient, editor: dict[str, str], *slugs: str) -> None:
    for slug in slugs:
        resp = client.post(
            "/newsletters", json={"slug": slug, "name": slug.upper()}, headers=editor
        )
        assert resp.status_code == 201, resp.text


def _reader(ctx: Context, email: str) -> Subscriber:
    with session_scope(ctx.sessions) as session:
        row = session.scalars(select(Subscriber).where(Subscriber.email == email)).one()
        session.expunge(row)
        return row


def _confirmations(ctx: Context, email: str) -> int:
    with session_scope(ctx.sessions) as session:
        return len(
            session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.to_address == email,
                    OutboxMessage.kind == OutboxKind.confirm,
                )
            ).all()
        )


def _confirm(client: TestClient, ctx: Context, email: str) -> None:
    row = _reader(ctx, email)
    done = client.post(f"/confirm/{ctx.tokens.confirm_token(row.id, row.email)}")
    assert done.status_code == 200, done.text


def test_one_sign_up_takes_several_newsletters_with_one_confirmation(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _newsletters(client, editor, "alpha", "beta", "gamma")
    resp = client.post(
        "/subscribe", json={"email": "ada@example.org", "newsletters": ["alpha", "beta"]}
    )
    assert resp.status_code == 202 and resp.json() == {"status": "pending"}
    assert _confirmations(ctx, "ada@example.org") == 1
    row = _reader(ctx, "ada@example.org")
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["newsletters"] == {"alpha": "pending", "beta": "pending"}
    _confirm(client, ctx, "ada@example.org")
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["newsletters"] == {"alpha": "active", "beta": "active"}
    assert "tags" in shown and "attributes" in shown

    # The form: repeated fields. A known address gets the same answer, and its new
    # newsletter waits for a confirmation (anyone can type anyone's address).
    form = client.post(
        "/subscribe", data={"email": "ada@example.org", "newsletters": ["gamma", "alpha"]}
    )
    assert form.status_code == 200
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["newsletters"] == {"alpha": "active", "beta": "active", "gamma": "pending"}
    assert _confirmations(ctx, "ada@example.org") == 1  # once an hour per address at most

    # Without newsletters: the default one, as before.
    client.post("/subscribe", json={"email": "bob@example.org"})
    bob = _reader(ctx, "bob@example.org")
    assert client.get(f"/subscribers/{bob.id}", headers=editor).json()["newsletters"] == {
        "default": "pending"
    }
    unknown = client.post("/subscribe", json={"email": "c@example.org", "newsletters": ["nope"]})
    assert unknown.status_code == 422


def test_a_one_click_unsubscribe_from_a_keeps_b(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _newsletters(client, editor, "alpha", "beta")
    client.post("/subscribe", json={"email": "ada@example.org", "newsletters": ["alpha", "beta"]})
    _confirm(client, ctx, "ada@example.org")
    row = _reader(ctx, "ada@example.org")
    token = ctx.tokens.unsubscribe_token(row.id, row.token_nonce)
    page = client.get(f"/unsubscribe/{token}?newsletter=alpha")
    assert "ALPHA" in page.text and "?newsletter=alpha" in page.text
    left = client.post(
        f"/unsubscribe/{token}?newsletter=alpha",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert left.status_code == 200
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["status"] == "active"
    assert shown["newsletters"] == {"alpha": "unsubscribed", "beta": "active"}

    a = new_issue(client, editor, slug="a1", newsletter="alpha")
    b = new_issue(client, editor, slug="b1", newsletter="beta")
    assert client.post(f"/issues/{a['id']}/send", headers=editor).json()["recipients"] == 0
    assert client.post(f"/issues/{b['id']}/send", headers=editor).json()["recipients"] == 1

    # An old link (no newsletter) keeps its meaning: it leaves everything.
    client.post(f"/unsubscribe/{token}")
    assert client.get(f"/subscribers/{row.id}", headers=editor).json()["status"] == "unsubscribed"


def test_a_suppression_covers_every_newsletter(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _newsletters(client, editor, "alpha", "beta")
    client.post("/subscribe", json={"email": "ada@example.org", "newsletters": ["alpha", "beta"]})
    _confirm(client, ctx, "ada@example.org")
    with session_scope(ctx.sessions) as session:
        session.add(Suppression(email_hash=hash_secret("ada@example.org"), reason="complaint"))
    for slug in ("alpha", "beta"):
        issue = new_issue(client, editor, slug=f"s-{slug}", newsletter=slug)
        assert client.post(f"/issues/{issue['id']}/send", headers=editor).json()["recipients"] == 0


def test_the_preferences_page_ticks_newsletters_and_leaves_everything(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _newsletters(client, editor, "alpha", "beta")
    client.post("/subscribe", json={"email": "ada@example.org", "newsletters": ["alpha"]})
    _confirm(client, ctx, "ada@example.org")
    row = _reader(ctx, "ada@example.org")
    token = ctx.tokens.preferences_token(row.id, row.token_nonce)
    page = client.get(f"/preferences/{token}")
    assert page.status_code == 200
    assert 'name="newsletters" value="alpha" checked' in page.text
    assert 'name="newsletters" value="beta">' in page.text
    assert "Unsubscribe from everything" in page.text
    saved = client.post(
        f"/preferences/{token}",
        data={
            "action": "save",
            "name": "Ada",
            "pause_weeks": "0",
            "timezone": "UTC",
            "newsletters_shown": "1",
            "newsletters": ["beta"],
        },
    )
    assert saved.status_code == 200, saved.text
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["newsletters"] == {"alpha": "unsubscribed", "beta": "active"}
    assert shown["status"] == "active"
    client.post(f"/preferences/{token}", data={"action": "leave"})
    assert client.get(f"/subscribers/{row.id}", headers=editor).json()["status"] == "unsubscribed"


def test_leaving_ones_last_newsletter_by_one_click_leaves_the_list(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _newsletters(client, editor, "alpha")
    client.post("/subscribe", json={"email": "ada@example.org", "newsletters": ["alpha"]})
    _confirm(client, ctx, "ada@example.org")
    row = _reader(ctx, "ada@example.org")
    token = ctx.tokens.unsubscribe_token(row.id, row.token_nonce)
    assert client.post(f"/unsubscribe/{token}?newsletter=alpha").status_code == 200
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["status"] == "unsubscribed" and shown["newsletters"] == {"alpha": "unsubscribed"}


def test_a_newsletters_own_sign_up_page_takes_that_newsletter(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _newsletters(client, editor, "alpha")
    page = client.get("/n/alpha/subscribe")
    assert page.status_code == 200 and "ALPHA" in page.text
    assert '<input type="hidden" name="newsletters" value="alpha">' in page.text
    assert client.get("/n/nope/subscribe").status_code == 404
    client.post("/subscribe", data={"email": "ada@example.org", "newsletters": "alpha"})
    row = _reader(ctx, "ada@example.org")
    shown = client.get(f"/subscribers/{row.id}", headers=editor).json()
    assert shown["newsletters"] == {"alpha": "pending"}
    retry = client.post("/subscribe", data={"email": "not an address", "newsletters": "alpha"})
    assert retry.status_code == 422 and 'value="alpha"' in retry.text
