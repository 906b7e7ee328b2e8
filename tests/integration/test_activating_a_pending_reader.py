"""An editor who makes a pending reader active (PATCH or import) starts the newsletters that
reader's sign-up asked for, as the confirmation link would have: they are not left waiting."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import Subscriber
from tests.helpers import new_issue


def _pending_reader_of(client: TestClient, editor: dict[str, str], ctx: Context) -> int:
    """Make newsletters alpha and beta and a reader who signed up for both, unconfirmed."""
    for slug in ("alpha", "beta"):
        made = client.post(
            "/newsletters", json={"slug": slug, "name": slug.upper()}, headers=editor
        )
        assert made.status_code == 201, made.text
    signed = client.post(
        "/subscribe", json={"email": "ada@example.org", "newsletters": ["alpha", "beta"]}
    )
    assert signed.status_code == 202
    with session_scope(ctx.sessions) as session:
        sid = session.scalars(
            select(Subscriber.id).where(Subscriber.email == "ada@example.org")
        ).one()
    shown = client.get(f"/subscribers/{sid}", headers=editor).json()
    assert shown["status"] == "pending"
    assert shown["newsletters"] == {"alpha": "pending", "beta": "pending"}
    return sid


def _recipients(client: TestClient, editor: dict[str, str], slug: str) -> int:
    issue = new_issue(client, editor, slug=f"{slug}-1", newsletter=slug)
    sent = client.post(f"/issues/{issue['id']}/send", headers=editor)
    assert sent.status_code == 202, sent.text
    count: int = sent.json()["recipients"]
    return count


def test_an_editor_activating_a_pending_reader_starts_their_newsletters(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    sid = _pending_reader_of(client, editor, ctx)
    patched = client.patch(f"/subscribers/{sid}", json={"status": "active"}, headers=editor)
    assert patched.status_code == 200, patched.text
    shown = client.get(f"/subscribers/{sid}", headers=editor).json()
    assert shown["status"] == "active"
    assert shown["newsletters"] == {"alpha": "active", "beta": "active"}
    assert _recipients(client, editor, "alpha") == 1
    assert _recipients(client, editor, "beta") == 1


def test_importing_a_pending_reader_starts_their_newsletters(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    sid = _pending_reader_of(client, editor, ctx)
    done = client.post(
        "/subscribers/import",
        files={"file": ("people.csv", b"email,name\nada@example.org,Ada\n", "text/csv")},
        headers=editor,
    )
    assert done.status_code == 200, done.text
    assert done.json()["updated"] == 1
    shown = client.get(f"/subscribers/{sid}", headers=editor).json()
    assert shown["status"] == "active"
    assert shown["newsletters"] == {"alpha": "active", "beta": "active"}
    assert _recipients(client, editor, "alpha") == 1


def test_activating_a_reader_who_left_does_not_restart_what_they_left(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    sid = _pending_reader_of(client, editor, ctx)
    with session_scope(ctx.sessions) as session:
        row = session.get_one(Subscriber, sid)
        confirm = ctx.tokens.confirm_token(row.id, row.email)
        unsubscribe = ctx.tokens.unsubscribe_token(row.id, row.token_nonce)
    assert client.post(f"/confirm/{confirm}").status_code == 200
    assert client.post(f"/unsubscribe/{unsubscribe}?newsletter=beta").status_code == 200
    assert client.post(f"/unsubscribe/{unsubscribe}").status_code == 200
    patched = client.patch(f"/subscribers/{sid}", json={"status": "active"}, headers=editor)
    assert patched.status_code == 200, patched.text
    shown = client.get(f"/subscribers/{sid}", headers=editor).json()
    assert shown["newsletters"] == {"alpha": "active", "beta": "unsubscribed"}
