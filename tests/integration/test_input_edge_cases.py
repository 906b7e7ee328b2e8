"""Issue 9, item 10: the small holes — honeypot, undo, pending sign-ups, slugs, hosts, frames,
editor tokens, blank subjects, over-long local parts."""

from __future__ import annotations

import re
from datetime import timedelta

import itsdangerous.timed
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.editors import create_editor_token, list_editor_tokens, revoke_editor_token
from app.models import EditorToken, OutboxMessage, Subscriber, utcnow
from tests.cli_support import CliResult, run_cli
from tests.helpers import add_subscribers, new_issue


def _row(ctx: Context, email: str) -> Subscriber | None:
    with ctx.sessions() as s:
        return s.scalars(select(Subscriber).where(Subscriber.email == email)).first()


def _tokens(ctx: Context, sid: int) -> tuple[str, str]:
    with ctx.sessions() as s:
        nonce = s.get_one(Subscriber, sid).token_nonce
    return ctx.tokens.unsubscribe_token(sid, nonce), ctx.tokens.preferences_token(sid, nonce)


def _undo_value(page: str) -> str:
    found = re.search(r'name="undo" value="([^"]+)"', page)
    assert found is not None, "no undo button"
    return found.group(1)


# Honeypot and sign-ups ------------------------------------------------------------------------


def test_the_honeypot_applies_to_json_sign_ups(client: TestClient, ctx: Context) -> None:
    r = client.post("/subscribe", json={"email": "bot@example.org", "website": "http://spam"})
    assert r.status_code == 202 and r.json() == {"status": "pending"}
    assert _row(ctx, "bot@example.org") is None
    with ctx.sessions() as s:
        assert s.scalars(select(OutboxMessage)).first() is None


def test_a_public_sign_up_does_not_overwrite_a_pending_readers_name_or_ip(
    ctx: Context, client: TestClient
) -> None:
    r = client.post("/subscribe", json={"email": "p@example.org", "name": "Real Name"})
    assert r.status_code == 202
    before = _row(ctx, "p@example.org")
    assert before is not None and before.consent_ip == "127.0.0.1"
    with TestClient(client.app, client=("198.51.100.7", 1)) as stranger:  # type: ignore[arg-type]
        r = stranger.post("/subscribe", json={"email": "p@example.org", "name": "Prankster"})
        assert r.status_code == 202
    after = _row(ctx, "p@example.org")
    assert after is not None
    assert (after.name, after.consent_ip) == ("Real Name", "127.0.0.1")


@pytest.mark.parametrize("local", ["a" * 65, "b" * 70])
def test_a_local_part_over_64_characters_is_refused(client: TestClient, local: str) -> None:
    r = client.post("/subscribe", json={"email": f"{local}@example.org"})
    assert r.status_code == 422 and "64" in r.json()["detail"]
    ok = client.post("/subscribe", json={"email": f"{'c' * 64}@example.org"})
    assert ok.status_code == 202


# Undo -----------------------------------------------------------------------------------------


def test_undo_works_only_with_the_button_of_that_unsubscribe(
    client: TestClient, ctx: Context
) -> None:
    [sid] = add_subscribers(ctx, 1)
    unsub, _ = _tokens(ctx, sid)
    # The link alone (from any copy of any email) does not resubscribe.
    page = client.post(f"/unsubscribe/{unsub}")
    assert client.post(f"/unsubscribe/{unsub}/undo").status_code == 400
    # A second visit changes nothing and offers no undo.
    assert 'name="undo"' not in client.post(f"/unsubscribe/{unsub}").text
    r = client.post(f"/unsubscribe/{unsub}/undo", data={"undo": _undo_value(page.text)})
    assert r.status_code == 200 and "Welcome back" in r.text


def test_undo_expires_after_a_day(
    client: TestClient, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    [sid] = add_subscribers(ctx, 1)
    unsub, _ = _tokens(ctx, sid)
    day_ago = int((utcnow() - timedelta(hours=25)).timestamp())
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: day_ago)
    page = client.post(f"/unsubscribe/{unsub}")
    monkeypatch.undo()
    r = client.post(f"/unsubscribe/{unsub}/undo", data={"undo": _undo_value(page.text)})
    assert r.status_code == 400 and "expired" in r.text
    with ctx.sessions() as s:
        assert s.get_one(Subscriber, sid).status == "unsubscribed"


def test_undo_never_reverses_an_editors_unsubscribe(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    [sid] = add_subscribers(ctx, 1)
    unsub, _ = _tokens(ctx, sid)
    page = client.post(f"/unsubscribe/{unsub}")
    undo = _undo_value(page.text)
    # The editor reactivates, then unsubscribes them: the reader's old button is void.
    for status in ("active", "unsubscribed"):
        r = client.patch(f"/subscribers/{sid}", json={"status": status}, headers=editor)
        assert r.status_code == 200
    assert client.post(f"/unsubscribe/{unsub}/undo", data={"undo": undo}).status_code == 409
    # An editor's unsubscribe visited afterwards by the reader offers no undo either.
    [other] = add_subscribers(ctx, 1, domain="example.net")
    client.patch(f"/subscribers/{other}", json={"status": "unsubscribed"}, headers=editor)
    other_unsub, _ = _tokens(ctx, other)
    assert 'name="undo"' not in client.post(f"/unsubscribe/{other_unsub}").text
    with ctx.sessions() as s:
        assert s.get_one(Subscriber, sid).status == "unsubscribed"


# Issues ---------------------------------------------------------------------------------------


def test_a_slug_with_a_trailing_line_break_is_refused(
    client: TestClient, editor: dict[str, str]
) -> None:
    r = client.post(
        "/issues",
        json={"subject": "S", "slug": "abc\n", "blocks": [{"type": "markdown", "body": "x"}]},
        headers=editor,
    )
    assert r.status_code == 422
    issue = new_issue(client, editor)
    r = client.patch(f"/issues/{issue['id']}", json={"slug": "abc\n"}, headers=editor)
    assert r.status_code == 422


@pytest.mark.parametrize("subject", [" ", "   ", "\t \u00a0"])
def test_a_subject_of_only_spaces_is_refused(
    client: TestClient, editor: dict[str, str], subject: str
) -> None:
    body = {"subject": subject, "blocks": [{"type": "markdown", "body": "x"}]}
    assert client.post("/issues", json=body, headers=editor).status_code == 422
    issue = new_issue(client, editor)
    r = client.patch(f"/issues/{issue['id']}", json={"subject": subject}, headers=editor)
    assert r.status_code == 422


# Hosts and frames -----------------------------------------------------------------------------


def test_a_foreign_host_header_is_refused_and_never_reflected(client: TestClient) -> None:
    r = client.get("/archive/", headers={"host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 400
    assert "evil.example" not in r.headers.get("location", "") and "evil.example" not in r.text
    ok = client.get("/archive/", follow_redirects=False)
    assert ok.status_code in (200, 307) and "evil" not in ok.headers.get("location", "")
    for host in ("localhost", "127.0.0.1:8000", "testserver"):
        assert client.get("/healthz", headers={"host": host}).status_code == 200


def test_public_pages_cannot_be_framed_and_carry_a_csp(client: TestClient, ctx: Context) -> None:
    [sid] = add_subscribers(ctx, 1)
    unsub, prefs = _tokens(ctx, sid)
    for path in ("/subscribe", f"/unsubscribe/{unsub}", f"/preferences/{prefs}", "/archive"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["x-frame-options"] == "DENY"
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert r.headers["referrer-policy"] == "no-referrer"


# Editor tokens --------------------------------------------------------------------------------


def test_editor_tokens_can_be_listed_revoked_and_expire(client: TestClient, ctx: Context) -> None:
    with session_scope(ctx.sessions) as s:
        keep = create_editor_token(s, "desk")
        gone = create_editor_token(s, "laptop")
        short = create_editor_token(s, "temp", expires_days=1)
    with session_scope(ctx.sessions) as s:
        listed = {t.name: t for t in list_editor_tokens(s)}
        assert set(listed) == {"desk", "laptop", "temp"}
        assert listed["temp"].expires_at is not None and listed["desk"].expires_at is None
        revoke_editor_token(s, "laptop")
    auth = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
    assert client.get("/issues", headers=auth(keep)).status_code == 200
    assert client.get("/issues", headers=auth(gone)).status_code == 401
    assert client.get("/issues", headers=auth(short)).status_code == 200
    with session_scope(ctx.sessions) as s:
        row = s.scalars(select(EditorToken).where(EditorToken.name == "temp")).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
    assert client.get("/issues", headers=auth(short)).status_code == 401


def test_editor_token_cli_list_revoke_and_expiry(settings: Settings, client: TestClient) -> None:
    def run(*args: str) -> CliResult:
        return run_cli(settings, "editor-token", *args)

    made = run("create", "night desk", "--expires-days", "30")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    listed = run("list")
    assert listed.returncode == 0 and "night desk" in listed.stdout and token not in listed.stdout
    assert run("revoke", "night desk").returncode == 0
    assert client.get("/issues", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    missing = run("revoke", "nobody")
    assert missing.returncode == 1 and "nobody" in missing.stderr


def test_email_html_gets_its_own_csp_and_errors_get_the_pages_one(
    client: TestClient, editor: dict[str, str]
) -> None:
    issue = new_issue(client, editor)
    preview = client.get(f"/issues/{issue['id']}/preview", headers=editor)
    assert preview.headers["x-frame-options"] == "SAMEORIGIN"
    assert "style-src 'unsafe-inline'" in preview.headers["content-security-policy"]
    assert "script-src" not in preview.headers["content-security-policy"]
    missing = client.get("/archive/no-such-issue")
    assert missing.status_code == 404 and missing.headers["x-frame-options"] == "DENY"
