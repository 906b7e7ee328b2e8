"""Public subscriber flows: sign-up, double opt-in, tokens, unsubscribe (one-click), preferences."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import itsdangerous.timed
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import OutboxMessage, Subscriber, SubscriberStatus, Suppression, utcnow
from app.subscribers import service
from app.tokens import TokenService, hash_secret

HTML = {"accept": "text/html"}


def subscriber(ctx: Context, email: str) -> Subscriber | None:
    """Return the stored row for an address."""
    with ctx.sessions() as s:
        return s.scalars(select(Subscriber).where(Subscriber.email == email)).first()


def outbox(ctx: Context) -> list[OutboxMessage]:
    """Return every queued transactional message."""
    with ctx.sessions() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def sign_up(client: TestClient, email: str, name: str = "") -> None:
    """Subscribe through the JSON API."""
    r = client.post("/subscribe", json={"email": email, "name": name})
    assert r.status_code == 202, r.text


def confirm_token(ctx: Context, email: str) -> str:
    """Return a confirmation token for a stored address."""
    row = subscriber(ctx, email)
    assert row is not None
    return ctx.tokens.confirm_token(row.id, row.email)


def unsub_token(ctx: Context, sid: int) -> str:
    """Return a subscriber's unsubscribe token (with their nonce)."""
    with ctx.sessions() as s:
        return ctx.tokens.unsubscribe_token(sid, s.get_one(Subscriber, sid).token_nonce)


def prefs_token(ctx: Context, sid: int) -> str:
    """Return a subscriber's preferences token (with their nonce)."""
    with ctx.sessions() as s:
        return ctx.tokens.preferences_token(sid, s.get_one(Subscriber, sid).token_nonce)


# Sign-up ---------------------------------------------------------------------------------------


def test_json_subscribe_is_pending_with_one_confirmation(client: TestClient, ctx: Context) -> None:
    r = client.post("/subscribe", json={"email": "  Ada@Example.ORG ", "name": "Ada"})
    assert r.status_code == 202
    assert r.json() == {"status": "pending"}
    row = subscriber(ctx, "ada@example.org")
    assert row is not None
    assert (row.status, row.name, row.consent_source) == ("pending", "Ada", "api")
    assert row.consent_ip and row.confirmation_sent_at is not None
    [msg] = outbox(ctx)
    assert (msg.kind, msg.to_address, msg.subscriber_id) == ("confirm", "ada@example.org", row.id)


def test_form_subscribe_shows_check_inbox(client: TestClient, ctx: Context) -> None:
    r = client.post("/subscribe", data={"email": "bob@example.org", "name": "Bob", "website": ""})
    assert r.status_code == 200
    assert "Check your inbox" in r.text
    row = subscriber(ctx, "bob@example.org")
    assert row is not None and row.consent_source == "form"


def test_idna_domain_is_stored_as_ascii(client: TestClient, ctx: Context) -> None:
    sign_up(client, "reader@bücher.example")
    assert subscriber(ctx, "reader@xn--bcher-kva.example") is not None


@pytest.mark.parametrize("bad", ["not-an-address", "a@", "@example.org", "a b@example.org", ""])
def test_malformed_address_json_422(client: TestClient, ctx: Context, bad: str) -> None:
    r = client.post("/subscribe", json={"email": bad})
    assert r.status_code == 422
    assert r.json()["detail"]
    assert "email" in r.json()["detail"].lower()
    assert outbox(ctx) == []


def test_malformed_address_form_rerenders_with_values(client: TestClient, ctx: Context) -> None:
    r = client.post("/subscribe", data={"email": "nope@", "name": "Ada <Lovelace>"}, headers=HTML)
    assert r.status_code == 422
    assert "doesn&#39;t look like an email address" in r.text or "look like an email" in r.text
    assert 'value="nope@"' in r.text
    assert "Ada &lt;Lovelace&gt;" in r.text  # escaped, kept
    assert 'aria-invalid="true"' in r.text
    assert outbox(ctx) == []


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.org", "name": "Ada\r\nBcc: x@evil.example"},
        {"email": "a@example.org", "name": "Ada\nLovelace"},
        {"email": "a@example.org\r\nBcc: x@evil.example", "name": "Ada"},
        {"email": "a@example.org", "name": "x" * 201},
    ],
)
def test_line_breaks_and_long_names_are_refused(
    client: TestClient, ctx: Context, body: dict[str, str]
) -> None:
    r = client.post("/subscribe", json=body)
    assert r.status_code == 422
    assert subscriber(ctx, "a@example.org") is None


def test_non_json_body_is_a_readable_422(client: TestClient) -> None:
    r = client.post("/subscribe", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "JSON" in r.json()["detail"]


def test_honeypot_answers_the_same_and_stores_nothing(client: TestClient, ctx: Context) -> None:
    real = client.post("/subscribe", data={"email": "x@example.org", "name": "", "website": ""})
    bot = client.post(
        "/subscribe", data={"email": "x@example.org", "name": "", "website": "http://spam"}
    )
    assert bot.status_code == real.status_code == 200
    assert bot.text == real.text
    bot2 = client.post("/subscribe", data={"email": "y@example.org", "website": "spam"})
    assert bot2.status_code == 200 and "Check your inbox" in bot2.text
    assert subscriber(ctx, "y@example.org") is None
    assert len(outbox(ctx)) == 1


def test_same_answer_for_known_and_unknown_addresses(client: TestClient, ctx: Context) -> None:
    def answers(email: str) -> tuple[str, str]:
        j = client.post("/subscribe", json={"email": email})
        f = client.post("/subscribe", data={"email": email}, headers=HTML)
        assert (j.status_code, f.status_code) == (202, 200)
        return j.text, f.text.replace(email, "EMAIL")

    fresh = answers("new@example.org")
    pending = answers("new@example.org")
    with session_scope(ctx.sessions) as s:
        for email, status in [("act@example.org", "active"), ("left@example.org", "bounced")]:
            service.create_subscriber(
                s, email=email, name="", status=SubscriberStatus.active, now=utcnow()
            )
            s.scalars(select(Subscriber).where(Subscriber.email == email)).one().status = status
        s.add(Suppression(email_hash=hash_secret("gone@example.org"), reason="erased"))
    assert fresh == pending == answers("act@example.org") == answers("left@example.org")
    assert answers("gone@example.org") == fresh
    assert subscriber(ctx, "gone@example.org") is None
    # Only the brand-new address got a confirmation; nothing for active, bounced, suppressed.
    assert [m.to_address for m in outbox(ctx)] == ["new@example.org"]


def test_one_confirmation_per_hour(client: TestClient, ctx: Context) -> None:
    for _ in range(3):
        sign_up(client, "eager@example.org")
    assert len(outbox(ctx)) == 1
    with session_scope(ctx.sessions) as s:
        row = s.scalars(select(Subscriber).where(Subscriber.email == "eager@example.org")).one()
        row.confirmation_sent_at = utcnow() - timedelta(minutes=61)
    sign_up(client, "eager@example.org")
    assert len(outbox(ctx)) == 2
    sign_up(client, "EAGER@example.org")
    assert len(outbox(ctx)) == 2


# Confirm ---------------------------------------------------------------------------------------


def test_get_confirm_changes_nothing_post_activates(client: TestClient, ctx: Context) -> None:
    sign_up(client, "c@example.org", "Cee")
    token = confirm_token(ctx, "c@example.org")
    page = client.get(f"/confirm/{token}")
    assert page.status_code == 200
    assert f'action="/confirm/{token}"' in page.text and "<button" in page.text
    assert subscriber(ctx, "c@example.org").status == "pending"  # type: ignore[union-attr]
    done = client.post(f"/confirm/{token}")
    assert done.status_code == 200 and "subscribed" in done.text
    row = subscriber(ctx, "c@example.org")
    assert row is not None and row.status == "active" and row.confirmed_at is not None
    again = client.post(f"/confirm/{token}")
    assert again.status_code == 200  # idempotent


def test_tampered_confirm_token_is_400_page(client: TestClient, ctx: Context) -> None:
    sign_up(client, "t@example.org")
    token = confirm_token(ctx, "t@example.org")
    bad = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    for r in (client.get(f"/confirm/{bad}"), client.post(f"/confirm/{bad}")):
        assert r.status_code == 400
        assert "text/html" in r.headers["content-type"]
        assert "not valid" in r.text
    assert subscriber(ctx, "t@example.org").status == "pending"  # type: ignore[union-attr]


def test_expired_confirm_token_is_400(
    client: TestClient, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_up(client, "late@example.org")
    eight_days_ago = int(time.time()) - 8 * 24 * 3600
    monkeypatch.setattr(
        itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: eight_days_ago
    )
    token = confirm_token(ctx, "late@example.org")
    monkeypatch.undo()
    r = client.post(f"/confirm/{token}")
    assert r.status_code == 400 and "expired" in r.text
    assert subscriber(ctx, "late@example.org").status == "pending"  # type: ignore[union-attr]


def test_token_signed_with_old_key_verifies_unknown_key_does_not(
    client: TestClient, ctx: Context
) -> None:
    sign_up(client, "rot@example.org")
    row = subscriber(ctx, "rot@example.org")
    assert row is not None
    stranger = TokenService(["not-one-of-ours"], 3600).confirm_token(row.id, row.email)
    assert client.post(f"/confirm/{stranger}").status_code == 400
    old = TokenService(["an-old-key"], 3600).confirm_token(row.id, row.email)
    assert client.post(f"/confirm/{old}").status_code == 200
    assert subscriber(ctx, "rot@example.org").status == "active"  # type: ignore[union-attr]
    old_unsub = TokenService(["an-old-key"], 3600).unsubscribe_token(row.id, row.token_nonce)
    assert client.post(f"/unsubscribe/{old_unsub}").status_code == 200
    stranger_unsub = TokenService(["not-one-of-ours"], 3600).unsubscribe_token(row.id)
    assert client.post(f"/unsubscribe/{stranger_unsub}").status_code == 400


def test_confirm_link_for_a_changed_address_stops_working(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    sign_up(client, "old@example.org")
    token = confirm_token(ctx, "old@example.org")
    row = subscriber(ctx, "old@example.org")
    assert row is not None
    client.patch(f"/subscribers/{row.id}", json={"email": "new@example.org"}, headers=editor)
    assert client.post(f"/confirm/{token}").status_code == 400


def test_old_confirm_link_does_not_undo_an_unsubscribe(client: TestClient, ctx: Context) -> None:
    sign_up(client, "undo@example.org")
    token = confirm_token(ctx, "undo@example.org")
    client.post(f"/confirm/{token}")
    row = subscriber(ctx, "undo@example.org")
    assert row is not None
    client.post(f"/unsubscribe/{ctx.tokens.unsubscribe_token(row.id, row.token_nonce)}")
    assert client.post(f"/confirm/{token}").status_code == 400
    assert subscriber(ctx, "undo@example.org").status == "unsubscribed"  # type: ignore[union-attr]


# Unsubscribe -----------------------------------------------------------------------------------


def active(client: TestClient, ctx: Context, email: str) -> int:
    """Sign up and confirm an address; return its id."""
    sign_up(client, email)
    assert client.post(f"/confirm/{confirm_token(ctx, email)}").status_code == 200
    row = subscriber(ctx, email)
    assert row is not None
    return row.id


def test_get_unsubscribe_changes_nothing(client: TestClient, ctx: Context) -> None:
    sid = active(client, ctx, "u@example.org")
    token = unsub_token(ctx, sid)
    r = client.get(f"/unsubscribe/{token}")
    assert r.status_code == 200
    assert f'action="/unsubscribe/{token}"' in r.text and "Unsubscribe</button>" in r.text
    assert subscriber(ctx, "u@example.org").status == "active"  # type: ignore[union-attr]


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe(client: TestClient, ctx: Context, encoding: str) -> None:
    sid = active(client, ctx, "one@example.org")
    token = unsub_token(ctx, sid)
    client.cookies.clear()
    if encoding == "urlencoded":
        r = client.post(
            f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}, follow_redirects=False
        )
    else:
        r = client.post(
            f"/unsubscribe/{token}",
            files={"List-Unsubscribe": (None, "One-Click")},
            follow_redirects=False,
        )
    assert r.status_code == 200
    assert "set-cookie" not in r.headers
    row = subscriber(ctx, "one@example.org")
    assert row is not None and row.status == "unsubscribed" and row.unsubscribed_at is not None
    first_time = row.unsubscribed_at
    again = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    assert subscriber(ctx, "one@example.org").unsubscribed_at == first_time  # type: ignore[union-attr]


def test_tampered_unsubscribe_token_is_400(client: TestClient, ctx: Context) -> None:
    sid = active(client, ctx, "tam@example.org")
    token = unsub_token(ctx, sid)
    forged = ctx.tokens.unsubscribe_token(sid + 1)[: len(token) - 4] + token[-4:]
    for r in (client.get(f"/unsubscribe/{forged}"), client.post(f"/unsubscribe/{forged}")):
        assert r.status_code == 400
    assert client.post("/unsubscribe/garbage").status_code == 400
    assert subscriber(ctx, "tam@example.org").status == "active"  # type: ignore[union-attr]


def test_unsubscribe_of_an_erased_subscriber_is_still_200(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    sid = active(client, ctx, "erased@example.org")
    token = unsub_token(ctx, sid)
    assert client.delete(f"/subscribers/{sid}", headers=editor).status_code == 204
    assert client.post(f"/unsubscribe/{token}").status_code == 200


def test_changed_my_mind_resubscribes(client: TestClient, ctx: Context) -> None:
    sid = active(client, ctx, "mind@example.org")
    token = unsub_token(ctx, sid)
    page = client.post(f"/unsubscribe/{token}")
    assert f'action="/unsubscribe/{token}/undo"' in page.text
    undo = re.search(r'name="undo" value="([^"]+)"', page.text)
    assert undo is not None
    r = client.post(f"/unsubscribe/{token}/undo", data={"undo": undo.group(1)})
    assert r.status_code == 200 and "Welcome back" in r.text
    row = subscriber(ctx, "mind@example.org")
    assert row is not None and row.status == "active" and row.unsubscribed_at is None


def test_unsubscribed_reader_signing_up_again_needs_double_opt_in(
    client: TestClient, ctx: Context
) -> None:
    sid = active(client, ctx, "back@example.org")
    client.post(f"/unsubscribe/{unsub_token(ctx, sid)}")
    with session_scope(ctx.sessions) as s:
        s.get_one(Subscriber, sid).confirmation_sent_at = utcnow() - timedelta(hours=2)
    sign_up(client, "back@example.org")
    assert subscriber(ctx, "back@example.org").status == "pending"  # type: ignore[union-attr]
    # A second confirmation mail (the welcome is a ledger row now, not an outbox message).
    assert [m.kind for m in outbox(ctx)] == ["confirm", "confirm"]


# Preferences -----------------------------------------------------------------------------------


def test_preferences_rename_pause_resume_leave(client: TestClient, ctx: Context) -> None:
    sid = active(client, ctx, "pref@example.org")
    token = prefs_token(ctx, sid)
    page = client.get(f"/preferences/{token}")
    assert page.status_code == 200 and "pref@example.org" in page.text
    r = client.post(f"/preferences/{token}", data={"name": "Pat", "pause_weeks": "2"})
    assert r.status_code == 200 and "Saved" in r.text and "Paused until" in r.text
    row = subscriber(ctx, "pref@example.org")
    assert row is not None and row.name == "Pat" and row.paused_until is not None
    assert timedelta(days=13) < row.paused_until - utcnow() <= timedelta(days=14)
    client.post(f"/preferences/{token}", data={"name": "Pat", "pause_weeks": "0"})
    assert subscriber(ctx, "pref@example.org").paused_until is None  # type: ignore[union-attr]
    bad = client.post(f"/preferences/{token}", data={"name": "a\r\nb", "pause_weeks": "0"})
    assert bad.status_code == 422 and "line break" in bad.text
    bad = client.post(f"/preferences/{token}", data={"name": "Pat", "pause_weeks": "x"})
    assert bad.status_code == 422
    leave = client.post(f"/preferences/{token}", data={"action": "leave"})
    assert leave.status_code == 200 and "unsubscribed" in leave.text
    assert subscriber(ctx, "pref@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_preferences_tokens_are_checked(client: TestClient, ctx: Context) -> None:
    sid = active(client, ctx, "p2@example.org")
    unsub = unsub_token(ctx, sid)  # right key, wrong purpose
    assert client.get(f"/preferences/{unsub}").status_code == 400
    assert client.post(f"/preferences/{unsub}", data={"action": "leave"}).status_code == 400
    assert subscriber(ctx, "p2@example.org").status == "active"  # type: ignore[union-attr]


def test_signups_past_the_per_address_limit_get_429_with_retry_after(client: TestClient) -> None:
    body = {"email": "eager@example.org", "name": "Eager"}
    answers = [client.post("/subscribe", json=body).status_code for _ in range(6)]
    assert answers[:5] == [202] * 5
    assert answers[5] == 429
    refused = client.post("/subscribe", json=body)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    form = client.post("/subscribe", data={"email": "eager@example.org", "name": "E"})
    assert form.status_code == 429 and "text/html" in form.headers["content-type"]
    assert int(form.headers["Retry-After"]) > 0
