"""Issue 9, item 5: ids are never reused, and list links carry a nonce that erasure changes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from alembic import command
from fastapi.testclient import TestClient
from itsdangerous import Signer
from sqlalchemy import select, text

from app.context import Context
from app.db import make_engine, session_scope
from app.migrate import alembic_config
from app.models import Subscriber, SubscriberStatus
from app.rendering import placeholders
from app.tokens import PREFERENCES_SALT, UNSUBSCRIBE_SALT
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer


def _row(ctx: Context, subscriber_id: int) -> Subscriber:
    with ctx.sessions() as s:
        row = s.get(Subscriber, subscriber_id)
        assert row is not None
        return row


def _erase(client: TestClient, editor: dict[str, str], subscriber_id: int) -> None:
    assert client.delete(f"/subscribers/{subscriber_id}", headers=editor).status_code == 204


def _legacy(ctx: Context, salt: str, subscriber_id: int) -> str:
    """Return a list token as made before nonces: the signed 12-digit id alone."""

    signer = Signer(ctx.settings.secret_keys, salt=salt, digest_method=hashlib.sha256)
    return signer.sign(f"{subscriber_id:012d}").decode()


def test_the_highest_erased_id_is_never_given_again(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    _first, last = add_subscribers(ctx, 2)
    _erase(client, editor, last)
    r = client.post("/subscribers", json={"email": "next@example.org"}, headers=editor)
    assert r.status_code == 201
    assert r.json()["id"] > last


def test_an_erased_readers_preferences_link_never_opens_someone_else(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    [sid] = add_subscribers(ctx, 1)
    row = _row(ctx, sid)
    prefs = ctx.tokens.preferences_token(sid, row.token_nonce)
    unsub = ctx.tokens.unsubscribe_token(sid, row.token_nonce)
    assert client.get(f"/preferences/{prefs}").status_code == 200
    _erase(client, editor, sid)
    # Even a row that did get the same id (restored from a backup, an old database) is safe:
    with session_scope(ctx.sessions) as s:
        s.add(
            Subscriber(
                id=sid,
                email="newcomer@example.org",
                email_hash="x" * 64,
                name="Newcomer",
                status=SubscriberStatus.active,
            )
        )
    r = client.get(f"/preferences/{prefs}")
    assert r.status_code in (400, 404) and "newcomer" not in r.text.lower()
    r = client.post(f"/preferences/{prefs}", data={"action": "leave"})
    assert r.status_code in (400, 404)
    assert client.post(f"/unsubscribe/{unsub}").status_code == 200  # idempotent, changes nothing
    assert _row(ctx, sid).status == SubscriberStatus.active


def test_list_tokens_have_one_length_and_carry_the_nonce(ctx: Context) -> None:
    tokens = ctx.tokens
    for sid, nonce in ((0, "AAAAAAAA"), (1, "a-b_c9Zz"), (10**12 - 1, "zzzzzzzz")):
        for token in (tokens.unsubscribe_token(sid, nonce), tokens.preferences_token(sid, nonce)):
            assert len(token) == placeholders.LIST_TOKEN_LENGTH == tokens.list_token_length
        assert tokens.open_unsubscribe_token(tokens.unsubscribe_token(sid, nonce)) == (sid, nonce)
        assert tokens.open_preferences_token(tokens.preferences_token(sid, nonce)) == (sid, nonce)


def test_a_new_subscriber_gets_a_random_nonce(ctx: Context) -> None:
    a, b = add_subscribers(ctx, 2)
    nonces = {_row(ctx, a).token_nonce, _row(ctx, b).token_nonce}
    assert len(nonces) == 2 and all(re.fullmatch(r"[A-Za-z0-9_-]{8}", n) for n in nonces)


def test_sent_issues_carry_the_readers_nonce(
    client: TestClient, ctx: Context, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    [sid] = add_subscribers(ctx, 1)
    issue = new_issue(client, editor)
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202
    run_worker(ctx)
    [received] = smtp_server.handler.received
    msg = received.message()
    plain = msg.get_payload()[0]  # type: ignore[index]
    body = plain.get_content()
    nonce = _row(ctx, sid).token_nonce
    assert ctx.tokens.unsubscribe_token(sid, nonce) in body
    assert ctx.tokens.preferences_token(sid, nonce) in body


def test_old_tokens_without_a_nonce_unsubscribe_but_open_nothing(
    client: TestClient, ctx: Context
) -> None:
    [sid] = add_subscribers(ctx, 1)
    old_prefs = _legacy(ctx, PREFERENCES_SALT, sid)
    old_unsub = _legacy(ctx, UNSUBSCRIBE_SALT, sid)
    assert client.get(f"/preferences/{old_prefs}").status_code == 400
    r = client.post(f"/unsubscribe/{old_unsub}")
    assert r.status_code == 200
    assert "/preferences/" not in r.text and "/undo" not in r.text
    assert _row(ctx, sid).status == SubscriberStatus.unsubscribed
    assert client.post(f"/unsubscribe/{old_unsub}/undo").status_code == 400


def test_confirm_page_links_preferences_with_the_nonce(client: TestClient, ctx: Context) -> None:
    client.post("/subscribe", json={"email": "c@example.org"})
    with ctx.sessions() as s:
        row = s.scalars(select(Subscriber).where(Subscriber.email == "c@example.org")).one()
    r = client.post(f"/confirm/{ctx.tokens.confirm_token(row.id, row.email)}")
    assert ctx.tokens.preferences_token(row.id, row.token_nonce) in r.text


def test_the_sqlite_rebuild_keeps_every_delivery_and_outbox_row(tmp_path: Path) -> None:
    """The 0005 rebuild of `subscribers` must not fire ON DELETE SET NULL / CASCADE."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    now = "2026-11-30 08:00:00.000000"
    with engine.begin() as conn:
        for i in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO subscribers (id, email, email_hash, name, status, consent_source,"
                    " created_at, status_changed_at) VALUES (:i, :e, :h, '', 'active', 'test',"
                    " :now, :now)"
                ),
                {"i": i, "e": f"r{i}@example.org", "h": str(i) * 64, "now": now},
            )
        conn.execute(
            text(
                "INSERT INTO issues (id, slug, subject, preheader, blocks, status, recipients,"
                " created_at, updated_at) VALUES (1, 'one', 'One', '', '[]', 'sent', 2, :now, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, created_at,"
                " updated_at) VALUES (1, 1, 'sent', 1, :now, :now), (1, 2, 'sent', 1, :now, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO outbox (kind, to_address, subscriber_id, status, attempts,"
                " created_at) VALUES ('confirm', 'r2@example.org', 2, 'pending', 0, :now)"
            ),
            {"now": now},
        )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        subs = conn.execute(text("SELECT subscriber_id FROM deliveries ORDER BY id")).all()
        outbox = conn.execute(text("SELECT subscriber_id FROM outbox")).all()
        nonces = conn.execute(text("SELECT token_nonce FROM subscribers")).scalars().all()
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        conn.execute(text("DELETE FROM subscribers WHERE id = 2"))
        conn.execute(
            text(
                "INSERT INTO subscribers (email, email_hash, name, status, consent_source,"
                " created_at, status_changed_at) VALUES ('n@example.org', :h, '', 'active',"
                " 'test', :now, :now)"
            ),
            {"h": "9" * 64, "now": now},
        )
        new_id = conn.execute(text("SELECT max(id) FROM subscribers")).scalar()
    engine.dispose()
    assert [s for (s,) in subs] == [1, 2] and [s for (s,) in outbox] == [2]
    assert len(set(nonces)) == 2 and all(len(n) == 8 for n in nonces)
    assert new_id == 3


def test_list_tokens_match_itsdangerous_with_every_key() -> None:
    """Keys derived once give byte for byte the tokens of a plain Signer, and old keys verify."""
    import hashlib

    from itsdangerous import Signer

    from app.tokens import PREFERENCES_SALT, UNSUBSCRIBE_SALT, TokenService

    old, new = "an-old-key-0123456789abcdef", "the-new-key-0123456789abcdef"
    tokens = TokenService([old, new], 3600)
    for salt, make, read in (
        (UNSUBSCRIBE_SALT, tokens.unsubscribe_token, tokens.open_unsubscribe_token),
        (PREFERENCES_SALT, tokens.preferences_token, tokens.open_preferences_token),
    ):
        token = make(42, "abcdefgh")
        payload = token.rsplit(".", 1)[0]
        plain = Signer([old, new], salt=salt, digest_method=hashlib.sha256)
        assert token == plain.sign(payload).decode()
        signed_before = Signer(old, salt=salt, digest_method=hashlib.sha256).sign(payload)
        assert read(signed_before.decode()).subscriber_id == 42


def test_the_list_token_hmac_is_rfc_2104_for_any_key_length() -> None:
    import hmac
    import os

    from app.tokens import _HmacSha256

    for length in (1, 32, 64, 65, 200):  # shorter than, equal to and longer than a block
        key, message = os.urandom(length), os.urandom(40)
        assert _HmacSha256(key).digest(message) == hmac.digest(key, message, "sha256")
