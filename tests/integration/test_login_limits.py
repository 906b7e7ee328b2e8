"""Issue 17, item 7: sign-in limits count the normalised account and the real client, and an
attacker elsewhere slows an account down but cannot keep its editor out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.console.login_limits import LOGIN_PER_ACCOUNT_CLIENT, LOGIN_PER_CLIENT, check_login
from app.context import Context, build_context
from app.main import create_app
from app.models import utcnow
from tests.console_support import EMAIL, PASSWORD, add_account

WRONG = "guess guess guess"


@pytest.fixture
def proxied(settings: Settings, ctx: Context) -> Iterator[TestClient]:
    """A client behind a trusted reverse proxy at 127.0.0.1 (X-Forwarded-For is believed)."""
    add_account(ctx)
    trusted = settings.model_copy(
        update={"trusted_proxies": Settings(trusted_proxies="127.0.0.1").trusted_proxies}  # type: ignore[arg-type]
    )
    behind = build_context(trusted, engine=ctx.engine)
    app = create_app(trusted, context=behind)
    with TestClient(app, base_url="http://testserver", client=("127.0.0.1", 4000)) as client:
        yield client


def _try(client: TestClient, email: str, password: str, client_ip: str | None = None) -> int:
    headers = {"X-Forwarded-For": client_ip} if client_ip else {}
    resp = client.post(
        "/editor/login",
        data={"email": email, "password": password},
        headers=headers,
        follow_redirects=False,
    )
    return resp.status_code


def test_unicode_forms_of_an_address_count_as_one_account(ctx: Context, client: TestClient) -> None:
    add_account(ctx)
    forms = ["ed@ｅxample.org", "ed@ⓔxample.org", "ed@example。org", "ED@example.org"]
    codes = [
        _try(client, forms[i % len(forms)], WRONG) for i in range(LOGIN_PER_ACCOUNT_CLIENT.count)
    ]
    assert codes == [401] * LOGIN_PER_ACCOUNT_CLIENT.count
    # Every form is now at the limit from this client, the right password included.
    for form in forms:
        assert _try(client, form, PASSWORD) == 429, form


def test_the_per_client_limit_sees_through_trusted_proxies_and_folds_ipv6_64(
    proxied: TestClient,
) -> None:
    # One attacker rotating through the addresses of one IPv6 /64, many accounts.
    codes = [
        _try(proxied, f"user{i}@example.org", WRONG, f"2001:db8:1:2::{i:x}")
        for i in range(LOGIN_PER_CLIENT.count)
    ]
    assert codes == [401] * LOGIN_PER_CLIENT.count
    assert _try(proxied, "another@example.org", WRONG, "2001:db8:1:2:ffff::1") == 429
    # Someone else behind the same proxy is a different client and signs in.
    assert _try(proxied, EMAIL, PASSWORD, "2001:db8:1:3::1") == 303


def test_an_attacker_elsewhere_cannot_keep_the_editor_out(proxied: TestClient) -> None:
    # 30 wrong guesses at the editor's account from rotated (trusted) forwarded addresses...
    codes = [_try(proxied, EMAIL, WRONG, f"198.51.100.{i}") for i in range(30)]
    assert set(codes) == {401}
    # ...and the real editor, from a fresh client with the right password, gets in.
    assert _try(proxied, EMAIL, PASSWORD, "203.0.113.7") == 303


def test_one_client_guessing_one_account_is_refused_but_not_the_account(
    proxied: TestClient,
) -> None:
    codes = [_try(proxied, EMAIL, WRONG, "198.51.100.9") for _ in range(11)]
    assert codes == [401] * 10 + [429]
    assert _try(proxied, EMAIL, PASSWORD, "198.51.100.9") == 429  # that client waits...
    assert _try(proxied, EMAIL, PASSWORD, "192.0.2.44") == 303  # ...the editor does not


def test_many_attempts_on_one_account_slow_it_down(ctx: Context) -> None:
    now = utcnow()
    verdicts = [check_login(ctx.sessions, f"198.51.100.{i % 250}", EMAIL, now) for i in range(80)]
    assert all(v.allowed for v in verdicts)
    delays = [v.delay for v in verdicts]
    assert delays[0] == 0 and delays[-1] > delays[40] > 0
    assert max(delays) <= 10  # slowed, never shut
