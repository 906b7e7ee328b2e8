"""Outbound webhooks: a real HTTP receiver on loopback, signatures, retries across a restart,
disabling after failures, and SSRF refusals."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.context import Context, build_context
from app.db import make_engine, session_scope
from app.delivery import build_worker
from app.models import Subscriber, WebhookDelivery, utcnow
from app.subscribers.service import confirm, unsubscribe
from app.suppressions.service import suppress_subscriber
from app.tokens import ListToken
from app.webhooks.safety import forbidden
from app.webhooks.sender import WebhookSender, backoff, beat, run_webhook_sender
from tests.certs import self_signed
from tests.delivery_support import add_issue, add_subscribers, send_now
from tests.smtp_server import SMTPTestServer

ALL_EVENTS = [
    "subscriber.confirmed",
    "subscriber.unsubscribed",
    "subscriber.bounced",
    "subscriber.complained",
    "issue.sent",
]


class Receiver:
    """An HTTP server on 127.0.0.1 that records POSTs and answers from a script."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[int] = []  # consumed first; then 200
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    code = outer.answers.pop(0) if outer.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        """Return the listening port."""
        return int(self.server.server_address[1])

    def url(self, host: str = "127.0.0.1") -> str:
        """Return the hook URL on this server."""
        return f"http://{host}:{self.port}/hook?x=1"

    def close(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Start a webhook receiver on loopback."""
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def private_ok(ctx: Context) -> Context:
    """Allow loopback targets (the receiver) and retry at once."""
    ctx.settings.webhook_allow_private = True
    ctx.settings.webhook_backoff_seconds = 0
    return ctx


def _ref(session: Session, subscriber_id: int) -> ListToken:
    """Return the list token reference a reader's own unsubscribe link carries."""
    return ListToken(subscriber_id, session.get_one(Subscriber, subscriber_id).token_nonce)


def register(
    client: TestClient, editor: dict[str, str], url: str, events: list[str]
) -> dict[str, Any]:
    """Create a webhook through the API and return its JSON."""
    resp = client.post("/webhooks", json={"url": url, "events": events}, headers=editor)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    assert set(data) >= {"id", "secret"}
    return data


def drain(ctx: Context) -> None:
    """POST every due event once, in-process."""

    async def go() -> None:
        sender = WebhookSender(ctx)
        while await sender.send_due():
            pass

    asyncio.run(go())


def test_every_event_reaches_the_receiver_signed(
    client: TestClient,
    private_ok: Context,
    editor: dict[str, str],
    receiver: Receiver,
    smtp_server: SMTPTestServer,
) -> None:
    ctx = private_ok
    hook = register(client, editor, receiver.url(), ALL_EVENTS)
    add_subscribers(ctx, ["new@example.org"], status="pending")
    add_subscribers(ctx, ["leaver@example.org", "gone@example.org", "angry@example.org"])
    now = utcnow()
    with session_scope(ctx.sessions) as s:
        ids = {r.email: r.id for r in s.scalars(select(Subscriber))}
        confirm(
            s, ctx.tokens, ctx.tokens.confirm_token(ids["new@example.org"], "new@example.org"), now
        )
        unsubscribe(s, _ref(s, ids["leaver@example.org"]), now)
        angry = s.get(Subscriber, ids["angry@example.org"])
        assert angry is not None
        suppress_subscriber(s, angry, "complaint", "webhook", "abuse report", now)
    smtp_server.handler.plan("gone@example.org", "550 5.1.1 No such user")
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    asyncio.run(build_worker(ctx).run_until_idle())

    drain(ctx)

    got = {}
    for req in receiver.requests:
        body = req["body"]
        expected = "sha256=" + hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
        assert req["headers"]["X-MorningPost-Signature"] == expected
        assert req["headers"]["Content-Type"] == "application/json"
        assert req["path"] == "/hook?x=1"
        payload = json.loads(body)
        assert set(payload) == {"id", "event", "at", "data"}
        got[payload["event"]] = payload["data"]
    assert set(got) == set(ALL_EVENTS)
    assert got["subscriber.confirmed"]["email"] == "new@example.org"
    assert got["subscriber.unsubscribed"]["email"] == "leaver@example.org"
    assert got["subscriber.complained"]["email"] == "angry@example.org"
    assert got["subscriber.bounced"]["email"] == "gone@example.org"
    assert got["issue.sent"]["issue_id"] == issue_id
    assert got["issue.sent"]["deliveries"] == {"sent": 1, "failed": 1}

    listed = client.get("/webhooks", headers=editor).json()
    assert listed[0]["deliveries"]["delivered"] == 5
    assert "secret" not in listed[0]
    log = client.get(f"/webhooks/{hook['id']}/deliveries", headers=editor).json()
    assert {e["status"] for e in log} == {"delivered"}
    assert {e["last_status_code"] for e in log} == {200}


def test_only_chosen_events_are_sent_and_host_header_names_the_host(
    client: TestClient, private_ok: Context, editor: dict[str, str], receiver: Receiver
) -> None:
    ctx = private_ok
    register(client, editor, receiver.url("localhost"), ["subscriber.unsubscribed"])
    (sub,) = add_subscribers(ctx, ["a@example.org"])
    with session_scope(ctx.sessions) as s:
        confirm_not_emitted = s.get(Subscriber, sub)
        assert confirm_not_emitted is not None
        unsubscribe(s, _ref(s, sub), utcnow())
    drain(ctx)
    assert len(receiver.requests) == 1
    # Connected to the address "localhost" resolved to; the name went into Host.
    assert receiver.requests[0]["headers"]["Host"] == f"localhost:{receiver.port}"


def test_a_failing_endpoint_is_retried_and_succeeds_after_a_restart(
    client: TestClient, private_ok: Context, editor: dict[str, str], receiver: Receiver
) -> None:
    ctx = private_ok
    hook = register(client, editor, receiver.url(), ["subscriber.unsubscribed"])
    (sub,) = add_subscribers(ctx, ["a@example.org"])
    receiver.answers = [500]
    with session_scope(ctx.sessions) as s:
        unsubscribe(s, _ref(s, sub), utcnow())

    asyncio.run(WebhookSender(ctx).send_due())  # the first attempt: 500

    (entry,) = client.get(f"/webhooks/{hook['id']}/deliveries", headers=editor).json()
    assert entry["status"] == "pending"
    assert entry["attempts"] == 1
    assert entry["last_status_code"] == 500

    # A new process: its own engine and context on the same database, its own sender loop.
    engine = make_engine(ctx.settings.database_url)
    fresh = build_context(ctx.settings, engine=engine)

    async def restart() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_webhook_sender(fresh, stop))
        try:
            for _ in range(400):
                if len(receiver.requests) >= 2:
                    break
                await asyncio.sleep(0.025)
        finally:
            stop.set()
            await task

    asyncio.run(restart())
    engine.dispose()
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]  # the same event id
    (entry,) = client.get(f"/webhooks/{hook['id']}/deliveries", headers=editor).json()
    assert entry["status"] == "delivered"
    assert entry["attempts"] == 2
    assert entry["last_status_code"] == 200


def test_backoff_doubles_from_the_setting_and_is_capped(ctx: Context) -> None:
    assert ctx.settings.webhook_backoff_seconds == 10
    assert [backoff(ctx.settings, n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff(ctx.settings, 30) == 3600


def test_repeated_failures_disable_the_webhook_with_a_reason(
    client: TestClient, private_ok: Context, editor: dict[str, str], receiver: Receiver
) -> None:
    ctx = private_ok
    ctx.settings.webhook_disable_after = 3
    hook = register(client, editor, receiver.url(), ["subscriber.unsubscribed"])
    receiver.answers = [500] * 10
    (sub,) = add_subscribers(ctx, ["a@example.org"])
    with session_scope(ctx.sessions) as s:
        unsubscribe(s, _ref(s, sub), utcnow())
    for _ in range(5):
        asyncio.run(WebhookSender(ctx).send_due())
    assert len(receiver.requests) == 3  # disabled after the third: nothing more is sent
    (listed,) = client.get("/webhooks", headers=editor).json()
    assert listed["enabled"] is False
    assert "3 deliveries in a row failed" in listed["disabled_reason"]
    assert "500" in listed["disabled_reason"]

    receiver.answers = []
    resp = client.post(f"/webhooks/{hook['id']}/enable", headers=editor)
    assert resp.status_code == 200
    drain(ctx)
    assert len(receiver.requests) == 4
    (listed,) = client.get("/webhooks", headers=editor).json()
    assert listed["enabled"] is True
    assert listed["deliveries"]["delivered"] == 1


def test_an_event_is_given_up_after_a_day(
    client: TestClient, private_ok: Context, editor: dict[str, str], receiver: Receiver
) -> None:
    ctx = private_ok
    register(client, editor, receiver.url(), ["subscriber.unsubscribed"])
    receiver.answers = [503]
    (sub,) = add_subscribers(ctx, ["a@example.org"])
    with session_scope(ctx.sessions) as s:
        unsubscribe(s, _ref(s, sub), utcnow())
        s.execute(
            update(WebhookDelivery).values(created_at=utcnow() - timedelta(days=1, minutes=1))
        )
    drain(ctx)
    (listed,) = client.get("/webhooks", headers=editor).json()
    assert listed["deliveries"]["failed"] == 1
    assert listed["enabled"] is False
    assert "for a day" in listed["disabled_reason"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost:8080/hook",
        "http://0.0.0.0/hook",
        "https://192.168.1.10/hook",
    ],
)
def test_private_addresses_are_refused_at_creation(
    client: TestClient, editor: dict[str, str], url: str
) -> None:
    resp = client.post("/webhooks", json={"url": url, "events": ["issue.sent"]}, headers=editor)
    assert resp.status_code == 422, resp.text
    assert "MORNINGPOST_WEBHOOK_ALLOW_PRIVATE" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"url": "ftp://example.org/x", "events": ["issue.sent"]}, "http"),
        ({"url": "http://user:pw@example.org/x", "events": ["issue.sent"]}, "password"),
        ({"url": "https://example.org/x", "events": ["issue.opened"]}, "Unknown events"),
    ],
)
def test_bad_webhooks_are_refused(
    client: TestClient, editor: dict[str, str], body: dict[str, Any], why: str
) -> None:
    resp = client.post("/webhooks", json=body, headers=editor)
    assert resp.status_code == 422
    assert why in resp.json()["detail"]


def test_a_private_address_is_refused_at_send_time_too(
    client: TestClient, private_ok: Context, editor: dict[str, str], receiver: Receiver
) -> None:
    ctx = private_ok
    hook = register(client, editor, receiver.url(), ["subscriber.unsubscribed"])
    ctx.settings.webhook_allow_private = False  # e.g. the operator turned it off since
    (sub,) = add_subscribers(ctx, ["a@example.org"])
    with session_scope(ctx.sessions) as s:
        unsubscribe(s, _ref(s, sub), utcnow())
    asyncio.run(WebhookSender(ctx).send_due())
    assert receiver.requests == []
    (entry,) = client.get(f"/webhooks/{hook['id']}/deliveries", headers=editor).json()
    assert entry["status"] == "pending"
    assert entry["last_status_code"] is None
    assert "non-public" in entry["last_error"]


def test_webhooks_are_for_editors_and_can_be_removed(
    client: TestClient, private_ok: Context, editor: dict[str, str], receiver: Receiver
) -> None:
    assert client.get("/webhooks").status_code == 401
    hook = register(client, editor, receiver.url(), ["issue.sent"])
    assert client.delete(f"/webhooks/{hook['id']}").status_code == 401
    assert client.delete(f"/webhooks/{hook['id']}", headers=editor).status_code == 204
    assert client.get("/webhooks", headers=editor).json() == []
    assert client.delete(f"/webhooks/{hook['id']}", headers=editor).status_code == 404


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("8.8.8.8", False),
        ("2001:4860:4860::8888", False),
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("172.16.0.1", True),
        ("100.64.0.1", True),
        ("169.254.169.254", True),
        ("224.0.0.1", True),
        ("240.0.0.1", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("::", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("ff02::1", True),
        ("::ffff:10.0.0.1", True),
        ("::ffff:8.8.8.8", False),
        ("2002:a00:1::", True),  # 6to4 wrapping 10.0.0.1
    ],
)
def test_address_classes(address: str, refused: bool) -> None:
    assert forbidden(ipaddress.ip_address(address)) is refused


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("fec0::1", True),  # site-local (deprecated, RFC 3879): still routed inside some sites
        ("feff::1", True),
        ("3fff::1", True),  # documentation (RFC 9637)
        ("192.88.99.1", True),  # 6to4 relay anycast (deprecated, RFC 7526)
        ("64:ff9b::a00:1", True),  # NAT64 well-known prefix wrapping 10.0.0.1
        ("64:ff9b::7f00:1", True),  # ... wrapping 127.0.0.1
        ("64:ff9b::808:808", False),  # ... wrapping 8.8.8.8: an IPv6-only host's way out
        ("64:ff9b:1::808:808", True),  # NAT64 local-use prefix (RFC 8215)
        ("::a00:1", True),  # IPv4-compatible (deprecated)
        ("::ffff:0:a00:1", True),  # IPv4-translated (SIIT)
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True),  # Teredo wrapping 10.0.0.1
        ("2002:808:808::1", False),  # 6to4 wrapping a public address
        ("5f00::1", True),  # SRv6 SIDs
        ("100::1", True),  # discard-only
        ("2001:db8::1", True),
        ("2620:fe::fe", False),
    ],
)
def test_deprecated_and_special_ranges_are_refused(address: str, refused: bool) -> None:
    """Issue 17 item 10: `fec0::/10` was accepted; so were other special ranges."""
    assert forbidden(ipaddress.ip_address(address)) is refused


def test_a_site_local_webhook_url_is_refused(client: TestClient, editor: dict[str, str]) -> None:
    url = "http://[fec0::1]/hook"
    resp = client.post("/webhooks", json={"url": url, "events": ["issue.sent"]}, headers=editor)
    assert resp.status_code == 422, resp.text


def _certificate(folder: Path, dns_name: str) -> tuple[Path, Path]:
    """Write a self-signed certificate for `dns_name` (no IP in it); return (cert, key)."""
    return self_signed(folder, dns_name, x509.DNSName(dns_name), dns_name)


@pytest.mark.parametrize(("cert_name", "delivered"), [("localhost", True), ("other.test", False)])
def test_https_checks_the_certificate_against_the_name_not_the_address(
    client: TestClient,
    private_ok: Context,
    editor: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cert_name: str,
    delivered: bool,
) -> None:
    cert, key = _certificate(tmp_path, cert_name)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust this self-signed certificate
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    receiver = Receiver(tls)
    try:
        url = f"https://localhost:{receiver.port}/hook"
        hook = register(client, editor, url, ["subscriber.unsubscribed"])
        (sub,) = add_subscribers(private_ok, ["a@example.org"])
        with session_scope(private_ok.sessions) as s:
            unsubscribe(s, _ref(s, sub), utcnow())
        asyncio.run(WebhookSender(private_ok).send_due())
    finally:
        receiver.close()
    (entry,) = client.get(f"/webhooks/{hook['id']}/deliveries", headers=editor).json()
    if delivered:
        # Connected to 127.0.0.1, verified as "localhost" (SNI and Host carry the name).
        assert entry["status"] == "delivered"
        assert receiver.requests[0]["headers"]["Host"] == f"localhost:{receiver.port}"
    else:
        assert entry["status"] == "pending"
        assert "CERTIFICATE_VERIFY_FAILED" in entry["last_error"]
        assert receiver.requests == []


def test_the_log_keeps_a_month_of_finished_events_and_every_waiting_one(
    client: TestClient, private_ok: Context, editor: dict[str, str], receiver: Receiver
) -> None:
    ctx = private_ok
    hook = register(client, editor, receiver.url(), ["subscriber.unsubscribed"])
    old = utcnow() - timedelta(days=31)
    with session_scope(ctx.sessions) as s:
        for status in ("delivered", "failed", "pending"):
            s.add(
                WebhookDelivery(
                    webhook_id=hook["id"],
                    event_id=f"evt_{status}",
                    event="subscriber.unsubscribed",
                    body="{}",
                    status=status,
                    created_at=old,
                    next_attempt_at=utcnow() + timedelta(hours=1),
                )
            )
    with session_scope(ctx.sessions) as s:
        beat(s, "test:1:abcd", utcnow())
    log = client.get(f"/webhooks/{hook['id']}/deliveries", headers=editor).json()
    assert [e["status"] for e in log] == ["pending"]
