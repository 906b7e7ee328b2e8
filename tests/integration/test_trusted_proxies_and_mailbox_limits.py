"""Issue 9, item 6: forwarded headers only from trusted proxies; sign-up limits per mailbox."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.requests import Request

from app.config import Settings
from app.context import Context, build_context
from app.db import session_scope
from app.main import create_app
from app.models import OutboxMessage, Subscriber
from app.ratelimit import mailbox_key, network_key
from app.web.proxies import client_ip, client_scheme


def _request(peer: str, *headers: tuple[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    return Request(
        {
            "type": "http",
            "client": (peer, 1234),
            "headers": raw,
            "scheme": "http",
            "path": "/",
            "query_string": b"",
            "server": ("testserver", 80),
        }
    )


def test_client_ip_believes_only_trusted_proxies(settings: Settings) -> None:
    trusting = settings.model_copy(
        update={
            "trusted_proxies": Settings(
                trusted_proxies="10.0.0.0/8,127.0.0.1"  # type: ignore[arg-type]
            ).trusted_proxies
        }
    )
    xff = ("X-Forwarded-For", "1.1.1.1, 203.0.113.7, 10.1.2.3")
    # Untrusted peer: its own address, whatever it claims.
    assert client_ip(_request("198.51.100.4", xff), trusting) == "198.51.100.4"
    assert client_ip(_request("127.0.0.1", xff), settings) == "127.0.0.1"
    # Trusted chain: the rightmost address that is not one of ours; the client's own prefix
    # (1.1.1.1) is ignored.
    assert client_ip(_request("127.0.0.1", xff), trusting) == "203.0.113.7"
    # Garbage and over-long values are never returned.
    for junk in ("x" * 100, "not-an-ip", "1.2.3.4<script>"):
        got = client_ip(_request("10.0.0.1", ("X-Forwarded-For", junk)), trusting)
        assert got == "10.0.0.1"
    assert client_ip(_request("::ffff:192.0.2.1"), settings) == "192.0.2.1"
    assert client_ip(_request("testclient"), settings) is None
    proto = ("X-Forwarded-Proto", "https")
    assert client_scheme(_request("127.0.0.1", proto), trusting) == "https"
    assert client_scheme(_request("127.0.0.1", proto), settings) == "http"


def test_consent_ip_is_a_parsed_address_from_a_trusted_proxy(settings: Settings) -> None:
    trusted = settings.model_copy(
        update={"trusted_proxies": Settings(trusted_proxies="127.0.0.1").trusted_proxies}  # type: ignore[arg-type]
    )
    ctx = build_context(trusted)
    try:
        app = create_app(trusted, context=ctx)
        with TestClient(app, client=("127.0.0.1", 4000)) as client:
            for email, xff in (("a@example.org", "203.0.113.9"), ("b@example.org", "z" * 80)):
                r = client.post(
                    "/subscribe", json={"email": email}, headers={"X-Forwarded-For": xff}
                )
                assert r.status_code == 202, r.text
        with session_scope(ctx.sessions) as session:
            ips = dict(session.execute(select(Subscriber.email, Subscriber.consent_ip)).all())
    finally:
        ctx.close()
    assert ips == {"a@example.org": "203.0.113.9", "b@example.org": "127.0.0.1"}


def test_mailbox_key_folds_tags_and_gmail_dots() -> None:
    assert mailbox_key(" Victim+7@Example.org ") == "victim@example.org"
    assert mailbox_key("v.i.c.t.i.m+x@googlemail.com") == "victim@gmail.com"
    assert mailbox_key("v.i.c@example.org") == "v.i.c@example.org"


def test_plus_tags_share_one_per_address_limit(client: TestClient) -> None:
    codes = [
        client.post("/subscribe", json={"email": f"victim+{i}@example.org"}).status_code
        for i in range(8)
    ]
    assert codes[:5] == [202] * 5 and set(codes[5:]) == {429}
    dotted = [
        client.post("/subscribe", json={"email": e}).status_code
        for e in (
            "vic.tim@gmail.com",
            "victim@gmail.com",
            "v.ictim@googlemail.com",
            "victi.m+a@gmail.com",
            "VICTIM@gmail.com",
            "vi.ctim@gmail.com",
        )
    ]
    assert dotted[:5] == [202] * 5 and dotted[5] == 429


def test_ipv6_clients_are_counted_per_64_network() -> None:
    assert network_key("2001:db8:1:2::1") == network_key("2001:db8:1:2:ffff::9")
    assert network_key("2001:db8:1:2::1") != network_key("2001:db8:1:3::1")
    assert network_key("203.0.113.5") == "203.0.113.5"


def test_unicode_domain_forms_share_one_per_mailbox_limit(ctx: Context, client: TestClient) -> None:
    """Issue 17 item 8: `ｍailhost.net`, `ⓜailhost.net`, `mailhost。net` are one mailbox."""
    codes = [
        client.post("/subscribe", json={"email": f"victim+{i}@mailhost.net"}).status_code
        for i in range(6)
    ]
    assert codes == [202] * 5 + [429]
    forms = (
        "victim+6@ｍailhost.net",
        "victim+7@ⓜailhost.net",
        "victim+8@mailhost。net",
        "victim+9@mailhost．net",
        "victim+10@MAILHOST.NET.",
        "victim+11@ｍａｉｌｈｏｓｔ｡ｎｅｔ",
    )
    assert [client.post("/subscribe", json={"email": e}).status_code for e in forms] == [429] * 6
    with session_scope(ctx.sessions) as session:
        letters = list(session.scalars(select(OutboxMessage.to_address)))
        stored = set(session.scalars(select(Subscriber.email)))
    assert len(letters) == 5 and {a.rpartition("@")[2] for a in letters} == {"mailhost.net"}
    assert {a.rpartition("@")[2] for a in stored} == {"mailhost.net"}


def test_mailbox_key_folds_unicode_domains() -> None:
    assert mailbox_key("Victim+1@ｍailhost。net") == "victim@mailhost.net"
    assert mailbox_key("victim@ⓜailhost.net") == "victim@mailhost.net"
    assert mailbox_key("victim@bücher.example") == "victim@xn--bcher-kva.example"
    # Not an address at all: still one key per mailbox-looking string, never an error.
    assert mailbox_key("not an address") == "not an address"
