"""Email providers' webhooks (SES via SNS, Postmark, SendGrid, Mailgun): signed, tampered,
replayed and unknown events, from payloads in each provider's documented shape."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from app import routing
from app.config import Settings
from app.context import Context, build_context
from app.db import session_scope
from app.main import create_app
from app.models import (
    BounceEvent,
    Delivery,
    DeliveryStatus,
    Issue,
    IssueStatus,
    Subscriber,
    SubscriberStatus,
    Suppression,
)
from app.providers.ses import host_allowed
from tests.certs import self_signed
from tests.console_support import add_account, sign_in
from tests.helpers import add_subscribers

DATA = Path(__file__).resolve().parents[1] / "data" / "providers"
TOPIC = "arn:aws:sns:us-east-1:123456789012:morningpost-bounces"
POSTMARK_AUTH = "postmark:a-long-random-password"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


@dataclass
class Sent:
    """Three readers who each got one issue: their ids, addresses and Message-IDs."""

    subscribers: list[int]
    emails: list[str]
    deliveries: list[int]
    message_ids: list[str]


def sent_issue(ctx: Context, count: int = 3) -> Sent:
    """Create `count` active readers and one sent issue with a sent delivery for each."""
    subs = add_subscribers(ctx, count)
    with session_scope(ctx.sessions) as session:
        issue = Issue(slug="sent-one", subject="S", status=IssueStatus.sent)
        session.add(issue)
        session.flush()
        rows = [
            Delivery(issue_id=issue.id, subscriber_id=s, status=DeliveryStatus.sent) for s in subs
        ]
        session.add_all(rows)
        session.flush()
        for row in rows:
            row.message_id = f"<mp.{issue.id}.{row.id}.{secrets.token_hex(16)}@morningpost.test>"
        emails = [session.get_one(Subscriber, s).email for s in subs]
        return Sent(subs, emails, [r.id for r in rows], [r.message_id or "" for r in rows])


def fill(name: str, **values: str) -> str:
    """Return a fixture payload with its @@PLACEHOLDERS@@ filled in."""
    text = (DATA / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    return text


def state(ctx: Context, subscriber_id: int) -> tuple[str, str | None, int]:
    """Return (status, suppression reason, bounce events) of one reader."""
    with session_scope(ctx.sessions) as session:
        sub = session.get_one(Subscriber, subscriber_id)
        reason = session.scalar(
            select(Suppression.reason).where(Suppression.email_hash == sub.email_hash)
        )
        events = session.scalar(
            select(func.count()).where(BounceEvent.subscriber_id == subscriber_id)
        )
        return sub.status, reason, int(events or 0)


def all_events(ctx: Context) -> list[tuple[int | None, str, str]]:
    """Return every recorded bounce event as (delivery, kind, source)."""
    with session_scope(ctx.sessions) as session:
        rows = session.execute(
            select(BounceEvent.delivery_id, BounceEvent.kind, BounceEvent.source).order_by(
                BounceEvent.id
            )
        ).all()
        return [(d, k, s) for d, k, s in rows]


@pytest.fixture
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    """Return a P-256 key made for this test, standing in for SendGrid's."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def pctx(settings: Settings, engine: Engine, sendgrid_key: ec.EllipticCurvePrivateKey) -> Context:
    """Return a context whose settings name every provider's credentials."""
    public = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return build_context(
        settings.model_copy(
            update={
                "postmark_webhook_auth": POSTMARK_AUTH,
                "sendgrid_public_key": base64.b64encode(public).decode(),
                "mailgun_signing_key": MAILGUN_KEY,
                "sns_topics": [TOPIC],
                "sns_cert_hosts": ["localhost"],
                "webhook_allow_private": True,  # the test's SNS host is on loopback
            }
        ),
        engine=engine,
    )


@pytest.fixture
def pclient(pctx: Context) -> Iterator[TestClient]:
    """Return a test client on an app with the providers' credentials."""
    with TestClient(create_app(pctx.settings, context=pctx), base_url="http://testserver") as c:
        yield c


# Postmark ------------------------------------------------------------------------------------


def basic(credentials: str) -> dict[str, str]:
    """Return an HTTP Basic Authorization header."""
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def test_postmark_hard_bounce_suppresses_by_recipient_and_counts_once(
    pclient: TestClient, pctx: Context
) -> None:
    sent = sent_issue(pctx)
    body = fill("postmark_bounce.json", RCPT=sent.emails[0])
    for expected in ({"counted": 1, "duplicates": 0}, {"counted": 0, "duplicates": 1}):
        resp = pclient.post("/webhooks/postmark", content=body, headers=basic(POSTMARK_AUTH))
        assert resp.status_code == 200, resp.text
        assert {k: resp.json()[k] for k in expected} == expected
    assert state(pctx, sent.subscribers[0]) == (SubscriberStatus.bounced, "hard_bounce", 1)
    assert all_events(pctx) == [(sent.deliveries[0], "hard", "postmark")]
    assert state(pctx, sent.subscribers[1]) == (SubscriberStatus.active, None, 0)


def test_postmark_spam_complaint_marks_the_reader_complained(
    pclient: TestClient, pctx: Context
) -> None:
    sent = sent_issue(pctx)
    body = fill("postmark_spam_complaint.json", RCPT=sent.emails[1])
    resp = pclient.post("/webhooks/postmark", content=body, headers=basic(POSTMARK_AUTH))
    assert resp.status_code == 200
    assert state(pctx, sent.subscribers[1]) == (SubscriberStatus.complained, "complaint", 1)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("postmark:wrong-password"),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Bearer " + POSTMARK_AUTH},
    ],
)
def test_postmark_without_the_right_credentials_is_401_and_records_nothing(
    pclient: TestClient, pctx: Context, headers: dict[str, str]
) -> None:
    sent = sent_issue(pctx)
    body = fill("postmark_bounce.json", RCPT=sent.emails[0])
    assert pclient.post("/webhooks/postmark", content=body, headers=headers).status_code == 401
    assert all_events(pctx) == []


def test_an_event_about_no_reader_of_ours_is_200_and_ignored(
    pclient: TestClient, pctx: Context
) -> None:
    sent_issue(pctx)
    body = fill("postmark_bounce.json", RCPT="stranger@example.net")
    resp = pclient.post("/webhooks/postmark", content=body, headers=basic(POSTMARK_AUTH))
    assert resp.status_code == 200
    assert resp.json()["unmatched"] == 1
    assert all_events(pctx) == []


def test_a_signed_body_that_is_not_the_providers_format_is_422(
    pclient: TestClient, pctx: Context
) -> None:
    resp = pclient.post("/webhooks/postmark", content=b"[1, 2]", headers=basic(POSTMARK_AUTH))
    assert resp.status_code == 422
    resp = pclient.post("/webhooks/postmark", content=b"{not json", headers=basic(POSTMARK_AUTH))
    assert resp.status_code == 422


# SendGrid ------------------------------------------------------------------------------------


def sendgrid_headers(key: ec.EllipticCurvePrivateKey, body: bytes, stamp: str) -> dict[str, str]:
    """Sign a body as SendGrid's Event Webhook does: ECDSA P-256/SHA-256 over timestamp+body."""
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        "Content-Type": "application/json",
    }


def test_sendgrid_batch_matches_by_message_id_and_recipient(
    pclient: TestClient, pctx: Context, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    sent = sent_issue(pctx)
    body = fill(
        "sendgrid_events.json",
        RCPT="forwarded-alias@example.net",  # the Message-ID still names reader 0's delivery
        MESSAGE_ID=sent.message_ids[0],
        RCPT2=sent.emails[1],
        RCPT3=sent.emails[2],
    ).encode()
    stamp = str(int(time.time()))
    resp = pclient.post(
        "/webhooks/sendgrid", content=body, headers=sendgrid_headers(sendgrid_key, body, stamp)
    )
    assert resp.status_code == 200, resp.text
    # bounce, blocked and spamreport count; delivered and open are not about bounces.
    assert resp.json()["counted"] == 3
    assert state(pctx, sent.subscribers[0]) == (SubscriberStatus.bounced, "hard_bounce", 1)
    assert state(pctx, sent.subscribers[1]) == (SubscriberStatus.active, None, 1)  # soft
    assert state(pctx, sent.subscribers[2]) == (SubscriberStatus.complained, "complaint", 1)
    # The same batch again (SendGrid retries): nothing counts twice.
    again = pclient.post(
        "/webhooks/sendgrid", content=body, headers=sendgrid_headers(sendgrid_key, body, stamp)
    )
    assert again.json()["duplicates"] == 3
    assert len(all_events(pctx)) == 3


def test_sendgrid_tampered_or_unsigned_or_other_key_is_401(
    pclient: TestClient, pctx: Context, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    sent = sent_issue(pctx)
    body = fill(
        "sendgrid_events.json",
        RCPT=sent.emails[0],
        MESSAGE_ID=sent.message_ids[0],
        RCPT2=sent.emails[1],
        RCPT3=sent.emails[2],
    ).encode()
    stamp = str(int(time.time()))
    good = sendgrid_headers(sendgrid_key, body, stamp)
    tampered = body.replace(b'"bounce"', b'"spamreport"', 1)
    other = sendgrid_headers(ec.generate_private_key(ec.SECP256R1()), body, stamp)
    cases = [
        (tampered, good),
        (body, {**good, "X-Twilio-Email-Event-Webhook-Timestamp": str(int(stamp) + 1)}),
        (body, other),
        (body, {"Content-Type": "application/json"}),
        (body, {**good, "X-Twilio-Email-Event-Webhook-Signature": "é".encode()}),
    ]
    for content, headers in cases:
        assert (
            pclient.post("/webhooks/sendgrid", content=content, headers=headers).status_code == 401
        )
    assert all_events(pctx) == []


# Mailgun -------------------------------------------------------------------------------------


def mailgun_body(rcpt: str, message_id: str, *, token: str | None = None, age: float = 0) -> bytes:
    """Return a signed Mailgun webhook body (Mailgun gives the Message-ID without brackets)."""
    stamp = str(int(time.time() - age))
    token = token or secrets.token_hex(25)
    mac = hmac.new(MAILGUN_KEY.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return fill(
        "mailgun_failed_permanent.json",
        RCPT=rcpt,
        MESSAGE_ID=message_id.strip("<>"),
        TIMESTAMP=stamp,
        TOKEN=token,
        SIGNATURE=mac,
    ).encode()


def test_mailgun_permanent_failure_suppresses_by_message_id(
    pclient: TestClient, pctx: Context
) -> None:
    sent = sent_issue(pctx)
    body = mailgun_body(sent.emails[2], sent.message_ids[2])
    resp = pclient.post(
        "/webhooks/mailgun", content=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 200, resp.text
    assert state(pctx, sent.subscribers[2]) == (SubscriberStatus.bounced, "hard_bounce", 1)
    assert all_events(pctx) == [(sent.deliveries[2], "hard", "mailgun")]


def test_mailgun_replayed_stale_tampered_requests_are_401(
    pclient: TestClient, pctx: Context
) -> None:
    sent = sent_issue(pctx)
    body = mailgun_body(sent.emails[0], sent.message_ids[0])
    assert pclient.post("/webhooks/mailgun", content=body).status_code == 200
    # The very same request again: its one-time token was used.
    assert pclient.post("/webhooks/mailgun", content=body).status_code == 401
    stale = mailgun_body(sent.emails[1], sent.message_ids[1], age=301)
    assert pclient.post("/webhooks/mailgun", content=stale).status_code == 401
    tampered = mailgun_body(sent.emails[1], sent.message_ids[1]).replace(b"permanent", b"temporary")
    fresh = mailgun_body(sent.emails[1], sent.message_ids[1])
    forged = fresh.replace(fresh.split(b'"signature": "')[1][:64], b"0" * 64)
    assert pclient.post("/webhooks/mailgun", content=forged).status_code == 401
    assert pclient.post("/webhooks/mailgun", content=b'{"event-data": {}}').status_code == 401
    # Changing the body does not change what is signed (timestamp + token), but the event is
    # the same Mailgun event id: it counts once.
    assert pclient.post("/webhooks/mailgun", content=tampered).json()["duplicates"] == 1
    assert len(all_events(pctx)) == 1


def test_mailgun_temporary_failure_counts_as_a_soft_bounce(
    pclient: TestClient, pctx: Context
) -> None:
    sent = sent_issue(pctx)
    body = mailgun_body(sent.emails[0], sent.message_ids[0]).replace(
        b'"severity": "permanent"', b'"severity": "temporary"'
    )
    assert pclient.post("/webhooks/mailgun", content=body).status_code == 200
    assert state(pctx, sent.subscribers[0]) == (SubscriberStatus.active, None, 1)
    assert all_events(pctx)[0][1] == "soft"


def test_mailgun_policy_refusal_keeps_the_reader_and_alerts(
    pclient: TestClient, pctx: Context
) -> None:
    sent = sent_issue(pctx)
    spam = b"550 5.7.1 Message rejected due to content (spam)"
    body = mailgun_body(sent.emails[0], sent.message_ids[0]).replace(
        b"550 5.1.1 The email account that you tried to reach does not exist.", spam
    )
    assert pclient.post("/webhooks/mailgun", content=body).status_code == 200
    # Our mail was refused, not the reader's mailbox: as SES and SendGrid treat 5.7.x.
    assert state(pctx, sent.subscribers[0]) == (SubscriberStatus.active, None, 1)
    assert all_events(pctx) == [(sent.deliveries[0], "policy", "mailgun")]


def test_mailgun_signature_with_non_ascii_is_401_not_500(
    pclient: TestClient, pctx: Context
) -> None:
    sent = sent_issue(pctx)
    body = mailgun_body(sent.emails[0], sent.message_ids[0])
    given = json.loads(body)["signature"]["signature"]
    resp = pclient.post("/webhooks/mailgun", content=body.replace(given.encode(), "é".encode()))
    assert resp.status_code == 401, resp.text
    assert all_events(pctx) == []


def test_sendgrid_drops_are_told_apart_by_reason(
    pclient: TestClient, pctx: Context, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    sent = sent_issue(pctx)
    reasons = ["Spam Content (if Spam Checker app is enabled)", "Spam Reporting Address", "Invalid"]
    events = [
        {
            "email": email,
            "timestamp": 1764568870,
            "smtp-id": message_id,
            "event": "dropped",
            "sg_event_id": f"drop-{n}",
            "reason": reason,
        }
        for n, (email, message_id, reason) in enumerate(
            zip(sent.emails, sent.message_ids, reasons, strict=True)
        )
    ]
    body = json.dumps(events).encode()
    stamp = str(int(time.time()))
    resp = pclient.post(
        "/webhooks/sendgrid", content=body, headers=sendgrid_headers(sendgrid_key, body, stamp)
    )
    assert resp.json()["counted"] == 3, resp.text
    # Dropped for our content: the reader stays. For an earlier spam report: a complaint.
    assert state(pctx, sent.subscribers[0]) == (SubscriberStatus.active, None, 1)
    assert state(pctx, sent.subscribers[1]) == (SubscriberStatus.complained, "complaint", 1)
    assert state(pctx, sent.subscribers[2]) == (SubscriberStatus.bounced, "hard_bounce", 1)


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "ses"])
def test_provider_events_wait_in_the_admission_gate(
    pclient: TestClient, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of events takes its turn with every other request: 503 when the gate stays full."""
    monkeypatch.setattr(routing, "ADMISSION_WAIT_SECONDS", 0.2)
    gate = pclient.app.state.admission  # type: ignore[attr-defined]
    held = 0
    while gate.value > 0:
        pclient.portal.call(gate.acquire)  # type: ignore[union-attr]
        held += 1
    try:
        resp = pclient.post(f"/webhooks/{provider}", content=b"{}")
    finally:
        for _ in range(held):
            gate.release()
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"]


# SES through SNS -----------------------------------------------------------------------------


class SnsStandIn:
    """An HTTPS server on loopback for "localhost": serves the signing certificate, records
    subscription confirmations. The test trusts its TLS certificate through SSL_CERT_FILE."""

    def __init__(self, folder: Path, signing_cert_pem: bytes) -> None:
        cert, key = self_signed(folder, "localhost", x509.DNSName("localhost"), "sns-tls")
        self.tls_cert = cert
        self.confirmed: list[str] = []
        self.cert_fetches = 0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/cert.pem"):
                    stand_in.cert_fetches += 1
                    payload = signing_cert_pem
                else:
                    stand_in.confirmed.append(self.path)
                    payload = b"<ConfirmSubscriptionResponse/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return

        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """Return an https URL on this server, by name."""
        return f"https://localhost:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def signing_pair() -> tuple[rsa.RSAPrivateKey, bytes]:
    """Return an RSA key and a self-signed certificate for it, standing in for SNS's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def sns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SnsStandIn, rsa.RSAPrivateKey]]:
    """Serve a signing certificate over HTTPS on loopback; yield the server and its key."""
    key, pem = signing_pair()
    server = SnsStandIn(tmp_path, pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.tls_cert))
    yield server, key
    server.close()


def sns_message(
    server: SnsStandIn,
    key: rsa.RSAPrivateKey,
    kind: str,
    message: str,
    *,
    version: str = "1",
    topic: str = TOPIC,
    cert_url: str | None = None,
) -> dict[str, str]:
    """Return an SNS HTTP(S) message of `kind`, signed as SNS signs it."""
    msg = {
        "Type": kind,
        "MessageId": secrets.token_hex(16),
        "TopicArn": topic,
        "Message": message,
        "Timestamp": "2026-12-01T06:01:13.000Z",
        "SignatureVersion": version,
        "SigningCertURL": cert_url or server.url("/cert.pem"),
    }
    if kind == "Notification":
        msg["UnsubscribeURL"] = server.url("/unsubscribe")
        keys = ["Message", "MessageId", "Timestamp", "TopicArn", "Type"]
    else:
        msg["Token"] = secrets.token_hex(32)
        msg["SubscribeURL"] = server.url(f"/confirm?Token={msg['Token']}")
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    canonical = "".join(f"{k}\n{msg[k]}\n" for k in keys).encode()
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    msg["Signature"] = base64.b64encode(key.sign(canonical, padding.PKCS1v15(), algorithm)).decode()
    return msg


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_bounce_through_sns_is_verified_and_suppresses(
    pclient: TestClient, pctx: Context, sns: tuple[SnsStandIn, rsa.RSAPrivateKey], version: str
) -> None:
    server, key = sns
    sent = sent_issue(pctx)
    ses = fill("ses_bounce.json", RCPT=sent.emails[1], MESSAGE_ID=sent.message_ids[1])
    msg = sns_message(server, key, "Notification", ses, version=version)
    resp = pclient.post(
        "/webhooks/ses", content=json.dumps(msg), headers={"Content-Type": "text/plain"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["counted"] == 1
    assert state(pctx, sent.subscribers[1]) == (SubscriberStatus.bounced, "hard_bounce", 1)
    # Redelivered by SNS: the same MessageId counts once; the certificate was fetched once.
    again = pclient.post("/webhooks/ses", content=json.dumps(msg))
    assert again.json()["duplicates"] == 1
    assert server.cert_fetches == 1


def test_ses_complaint_marks_the_reader_complained(
    pclient: TestClient, pctx: Context, sns: tuple[SnsStandIn, rsa.RSAPrivateKey]
) -> None:
    server, key = sns
    sent = sent_issue(pctx)
    ses = fill("ses_complaint.json", RCPT=sent.emails[0], MESSAGE_ID=sent.message_ids[0])
    resp = pclient.post(
        "/webhooks/ses", content=json.dumps(sns_message(server, key, "Notification", ses))
    )
    assert resp.status_code == 200, resp.text
    assert state(pctx, sent.subscribers[0]) == (SubscriberStatus.complained, "complaint", 1)


def test_ses_subscription_is_confirmed_only_for_our_topic(
    pclient: TestClient, pctx: Context, sns: tuple[SnsStandIn, rsa.RSAPrivateKey]
) -> None:
    server, key = sns
    ours = sns_message(server, key, "SubscriptionConfirmation", "You have chosen to subscribe")
    resp = pclient.post("/webhooks/ses", content=json.dumps(ours))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "confirmed"}
    assert server.confirmed == [f"/confirm?Token={ours['Token']}"]
    theirs = sns_message(
        server, key, "SubscriptionConfirmation", "x", topic="arn:aws:sns:us-east-1:999999999999:t"
    )
    assert pclient.post("/webhooks/ses", content=json.dumps(theirs)).status_code == 401
    assert len(server.confirmed) == 1


def test_ses_tampered_foreign_certificate_and_unknown_version_are_401(
    pclient: TestClient, pctx: Context, sns: tuple[SnsStandIn, rsa.RSAPrivateKey]
) -> None:
    server, key = sns
    sent = sent_issue(pctx)
    ses = fill("ses_bounce.json", RCPT=sent.emails[0], MESSAGE_ID=sent.message_ids[0])
    good = sns_message(server, key, "Notification", ses)
    tampered = {**good, "Message": good["Message"].replace(sent.emails[0], sent.emails[2])}
    other_key, _pem = signing_pair()
    wrong_key = sns_message(server, other_key, "Notification", ses)
    # A certificate from a host that is not SNS is never fetched.
    foreign = sns_message(server, key, "Notification", ses, cert_url="https://evil.example/c.pem")
    for msg in (tampered, wrong_key, foreign, {**good, "SignatureVersion": "3"}):
        assert pclient.post("/webhooks/ses", content=json.dumps(msg)).status_code == 401
    assert pclient.post("/webhooks/ses", content=b'{"Type": "Other"}').status_code == 422
    assert all_events(pctx) == []


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", True),
        ("https://sns.eu-west-3.amazonaws.com/cert.pem", True),
        ("http://sns.us-east-1.amazonaws.com/cert.pem", False),  # not https
        ("https://sns.s3-us-west-2.amazonaws.com/cert.pem", False),  # an S3 bucket named sns
        ("https://sns.evil.us-east-1.amazonaws.com/cert.pem", False),  # * is one label
        ("https://sns.us-east-1.amazonaws.com.evil.example/cert.pem", False),
        ("https://user@sns.us-east-1.amazonaws.com/cert.pem", False),
        ("https://evil.example/sns.us-east-1.amazonaws.com/cert.pem", False),
    ],
)
def test_which_certificate_hosts_are_trusted(url: str, allowed: bool) -> None:
    assert host_allowed(url, ["sns.*.amazonaws.com"]) is allowed


def test_unconfigured_providers_refuse_everything(client: TestClient) -> None:
    # The default settings name no credentials: every provider's endpoint is closed.
    assert client.post("/webhooks/postmark", content=b"{}", headers=basic(":")).status_code == 401
    assert client.post("/webhooks/sendgrid", content=b"[]").status_code == 401
    assert client.post("/webhooks/mailgun", content=b"{}").status_code == 401
    assert (
        client.post(
            "/webhooks/ses", content=json.dumps({"Type": "Notification", "TopicArn": TOPIC})
        ).status_code
        == 401
    )


def test_the_console_settings_show_each_webhook_url_and_whether_an_event_arrived(
    pclient: TestClient, pctx: Context
) -> None:
    add_account(pctx)
    sign_in(pclient)
    page = pclient.get("/editor/settings").text
    for provider in ("ses", "postmark", "sendgrid", "mailgun"):
        assert f"http://testserver/webhooks/{provider}" in page
    assert page.count("no event has arrived yet") == 4
    assert POSTMARK_AUTH.split(":")[1] not in page and MAILGUN_KEY not in page
    sent = sent_issue(pctx)
    body = fill("postmark_bounce.json", RCPT=sent.emails[0])
    pclient.post("/webhooks/postmark", content=body, headers=basic(POSTMARK_AUTH))
    page = pclient.get("/editor/settings").text
    assert page.count("no event has arrived yet") == 3
    assert "Last event received" in page
