"""Console sign-in: redirects, wrong passwords, lockout, cookie flags, CSRF, sign-out, accounts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.config import Settings
from app.console.accounts import add_editor, remove_editor, verify_login
from app.console.login_limits import LOGIN_PER_ACCOUNT_CLIENT
from app.console.sessions import ABSOLUTE, IDLE, load_session, start_session
from app.context import Context, build_context
from app.db import session_scope
from app.errors import Conflict, InvalidInput
from app.main import create_app
from app.models import EditorSession, Issue, utcnow
from tests.cli_support import run_cli
from tests.conftest import REAL_PASSWORD_HASHING
from tests.console_support import EMAIL, PASSWORD, add_account, csrf_of, sign_in
from tests.helpers import new_issue


@pytest.fixture
def account(ctx: Context) -> None:
    """Create the test editor's account."""
    add_account(ctx)


def test_console_without_session_redirects_to_login(client: TestClient) -> None:
    resp = client.get("/editor/", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/editor/login"
    page = client.get("/editor/login")
    assert page.status_code == 200
    assert '<label for="email">Email</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert ">Sign in</button>" in page.text


def test_bearer_token_does_not_open_the_console(
    client: TestClient, editor: dict[str, str], account: None
) -> None:
    resp = client.get("/editor/issues", headers=editor, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/editor/login?next=/editor/issues"
    # …and it keeps working for the API.
    assert client.get("/issues", headers=editor).status_code == 200


def test_sign_in_sets_a_hardened_cookie_and_signs_out(
    client: TestClient, ctx: Context, account: None
) -> None:
    resp = client.post(
        "/editor/login", data={"email": EMAIL, "password": PASSWORD}, follow_redirects=False
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/editor/"
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("mp_editor=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # BASE_URL is http in the tests
    raw = cookie.split(";")[0].split("=", 1)[1]
    with session_scope(ctx.sessions) as session:
        stored = session.scalars(select(EditorSession.session_hash)).all()
    assert stored and raw not in stored  # only a hash of the cookie's value is kept

    page = client.get("/editor/")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.text  # no inline script: only <script src=…>

    # Sign-out without the token is refused and changes nothing.
    refused = client.post("/editor/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/editor/", follow_redirects=False).status_code == 200

    out = client.post("/editor/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.url.path == "/editor/login"
    assert client.get("/editor/", follow_redirects=False).status_code == 303
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(func.count()).select_from(EditorSession)) == 0
    # The old cookie's value is worthless now, even if someone kept a copy.
    client.cookies.set("mp_editor", raw)
    assert client.get("/editor/", follow_redirects=False).status_code == 303


def test_cookie_is_secure_and_host_prefixed_on_https(ctx: Context, account: None) -> None:
    https = build_context(
        ctx.settings.model_copy(update={"base_url": "https://news.example.org"}), engine=ctx.engine
    )
    with TestClient(create_app(https.settings, context=https), base_url="https://testserver") as c:
        resp = c.post(
            "/editor/login", data={"email": EMAIL, "password": PASSWORD}, follow_redirects=False
        )
        cookie = resp.headers["set-cookie"]
        assert cookie.startswith("__Host-mp_editor=")
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert c.get("/editor/settings").status_code == 200


def test_wrong_password_and_unknown_address_get_the_same_answer(
    client: TestClient, account: None
) -> None:
    wrong = client.post("/editor/login", data={"email": EMAIL, "password": "not the password"})
    unknown = client.post(
        "/editor/login", data={"email": "nobody@example.org", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    message = "That email address and password do not match an editor account."
    assert message in wrong.text and message in unknown.text
    assert 'role="alert"' in wrong.text
    assert f'value="{EMAIL}"' in wrong.text  # the address stays typed in
    assert "set-cookie" not in wrong.headers


def test_repeated_attempts_from_one_client_are_refused_even_with_the_right_password(
    client: TestClient, account: None
) -> None:
    for _ in range(LOGIN_PER_ACCOUNT_CLIENT.count):
        bad = client.post("/editor/login", data={"email": EMAIL, "password": "guess guess guess"})
        assert bad.status_code == 401
    locked = client.post("/editor/login", data={"email": EMAIL, "password": PASSWORD})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "Too many sign-in attempts" in locked.text
    assert client.get("/editor/", follow_redirects=False).status_code == 303


def test_attempts_from_one_ip_are_limited_across_accounts(
    client: TestClient, account: None
) -> None:
    statuses = [
        client.post(
            "/editor/login", data={"email": f"user{i}@example.org", "password": "x" * 12}
        ).status_code
        for i in range(31)
    ]
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429


def test_csrf_refusals_change_nothing(
    client: TestClient, editor: dict[str, str], ctx: Context, account: None
) -> None:
    issue = new_issue(client, editor, subject="Untouched")
    csrf = sign_in(client)
    posts = {
        f"/editor/issues/{issue['id']}/send": {},
        f"/editor/issues/{issue['id']}/delete": {},
        f"/editor/issues/{issue['id']}/edit": {"markdown": "---\nsubject: Changed\n---\n"},
        "/editor/subscribers": {"email": "new@example.org", "status": "active"},
        "/editor/suppressions": {"email": "x@example.org", "reason": "manual"},
    }
    for path, data in posts.items():
        for token in (None, "forged", csrf[:-2] + "xx"):
            body = dict(data) if token is None else {**data, "csrf_token": token}
            resp = client.post(path, data=body, follow_redirects=False)
            assert resp.status_code == 403, (path, token, resp.text)
    with session_scope(ctx.sessions) as session:
        row = session.get(Issue, issue["id"])
        assert row is not None and row.subject == "Untouched" and row.status == "draft"
    assert client.get("/subscribers", headers=editor).json()["items"] == []
    assert client.get("/suppressions", headers=editor).json()["items"] == []
    # A token of another session does not count either.
    other = TestClient(client.app, base_url="http://testserver")
    sign_in(other)
    resp = other.post(f"/editor/issues/{issue['id']}/delete", data={"csrf_token": csrf})
    assert resp.status_code == 403


def test_accounts_service_rules(ctx: Context) -> None:
    with session_scope(ctx.sessions) as session:
        with pytest.raises(InvalidInput):
            add_editor(session, "a@example.org", None, "too short")
        add_editor(session, "A@Example.org", "A", PASSWORD)
        with pytest.raises(Conflict):
            add_editor(session, "a@example.org", None, PASSWORD)
        row = verify_login(session, "a@example.org", PASSWORD, utcnow())
        assert row is not None and row.last_login_at is not None
        assert not row.password_hash.startswith(PASSWORD)
        assert row.password_hash.startswith("$argon2")
        assert verify_login(session, "a@example.org", PASSWORD + "!", utcnow()) is None
        remove_editor(session, "a@example.org")
        assert verify_login(session, "a@example.org", PASSWORD, utcnow()) is None


def test_editor_passwords_are_hashed_with_argon2id_at_its_recommended_cost() -> None:
    # The console's own: the tests swap in cheaper ones (conftest, _quick_password_hashing).
    real, dummy = REAL_PASSWORD_HASHING["hasher"], REAL_PASSWORD_HASHING["dummy"]
    phc = real.hash(PASSWORD)
    assert phc.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), phc
    assert real.verify(PASSWORD, phc) and not real.verify(PASSWORD + "!", phc)
    # An unknown address costs a check against a hash of the same cost (no timing oracle).
    assert dummy.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), dummy


def _cli(settings: Settings, cwd: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """Run `morningpost editor ARGS` (in-process) with `stdin` as its standard input."""
    result = run_cli(settings, "editor", *args, input=stdin, cwd=cwd)
    return result.returncode, result.stdout, result.stderr


def test_editor_commands(settings: Settings, tmp_path: Path, client: TestClient) -> None:
    code, out, err = _cli(
        settings,
        tmp_path,
        "add",
        "Chief@Example.org",
        "--name",
        "Chief",
        "--password-stdin",
        stdin="short\n",
    )
    assert code == 1 and "at least 12 characters" in err
    code, out, _ = _cli(
        settings,
        tmp_path,
        "add",
        "Chief@Example.org",
        "--name",
        "Chief",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0 and "chief@example.org" in out
    code, _, err = _cli(
        settings, tmp_path, "add", "two@example.org", stdin=f"{PASSWORD}\n{PASSWORD}x\n"
    )
    assert code == 1 and "the two passwords differ" in err
    code, out, _ = _cli(settings, tmp_path, "list")
    assert code == 0 and "chief@example.org\tChief\tlast sign-in: never" in out
    sign_in(client, "chief@example.org", PASSWORD)
    code, out, _ = _cli(settings, tmp_path, "remove", "chief@example.org")
    assert code == 0
    # Removing the account ends its sessions at once.
    assert client.get("/editor/", follow_redirects=False).status_code == 303
    code, _, err = _cli(settings, tmp_path, "remove", "chief@example.org")
    assert code == 1 and "No editor" in err


def test_sign_in_from_a_foreign_page_is_refused(client: TestClient, account: None) -> None:
    resp = client.post(
        "/editor/login",
        data={"email": EMAIL, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert resp.status_code == 403 and "set-cookie" not in resp.headers
    ok = client.post(
        "/editor/login",
        data={"email": EMAIL, "password": PASSWORD},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert ok.status_code == 303


def test_sessions_end_when_idle_or_too_old(ctx: Context) -> None:
    now = utcnow()
    with session_scope(ctx.sessions) as session:
        editor = add_editor(session, "s@example.org", None, PASSWORD)
        idle = start_session(session, editor, now)
        old = start_session(session, editor, now)
        assert load_session(session, idle, now + timedelta(seconds=30)) is not None
        assert load_session(session, idle, now + IDLE + timedelta(minutes=2)) is None
        # Kept busy, a session still ends after the absolute limit.
        moment = now
        while moment + timedelta(hours=6) < now + ABSOLUTE:
            moment += timedelta(hours=6)
            assert load_session(session, old, moment) is not None
        assert load_session(session, old, now + ABSOLUTE) is None
        assert load_session(session, "not-a-session", now) is None
