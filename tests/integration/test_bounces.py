"""VERP, DSN/ARF parsing and classification, the SMTP listener, the webhook, suppression rules."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import aiosmtplib
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.bounces.listener import start_bounce_listener
from app.bounces.parse import classify, parse_report
from app.bounces.routes import webhooks_router
from app.bounces.service import bounce_stats, policy_alerts, record_inbound
from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.main import create_app
from app.models import (
    BounceEvent,
    BounceKind,
    Delivery,
    SubscriberStatus,
    utcnow,
)
from app.sends.verp import parse_verp, verp_address, webhook_secret
from tests.bounce_support import make_deliveries, sample, subscriber_state
from tests.helpers import add_subscribers
from tests.smtp_server import free_port

DATA = Path(__file__).resolve().parents[1] / "data" / "bounces"


async def send_raw(port: int, rcpt: str, raw: bytes) -> None:
    """Send like a reporting MTA does: null sender (MAIL FROM:<>), one recipient."""
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10) as smtp:
        await smtp.sendmail("", [rcpt], raw)


def sign(settings: Settings, body: bytes) -> dict[str, str]:
    """Return the webhook signature header for a body."""
    mac = hmac.new(webhook_secret(settings).encode(), body, hashlib.sha256).hexdigest()
    return {"X-MorningPost-Signature": f"sha256={mac}"}


@pytest.fixture
def hooks(ctx: Context) -> Iterator[TestClient]:
    """Return a client on the app with the webhook router (added here until main wires it)."""
    app = create_app(ctx.settings, context=ctx)
    if not any(getattr(r, "path", "") == "/webhooks/bounce" for r in app.routes):
        app.include_router(webhooks_router)
    with TestClient(app, base_url="http://testserver") as c:
        yield c


# VERP ---------------------------------------------------------------------------------------


def test_verp_round_trip_and_forgeries(settings: Settings) -> None:
    addr = verp_address(42, settings)
    assert addr.startswith("bounces+42.") and addr.endswith("@morningpost.test")
    assert parse_verp(addr, settings) == 42
    assert parse_verp(f"<{addr.upper()}>", settings) == 42  # relays may change the case
    tag = addr.split(".", 1)[1].split("@")[0]
    assert parse_verp(f"bounces+43.{tag}@morningpost.test", settings) is None
    assert parse_verp("bounces+42.0000000000000000@morningpost.test", settings) is None
    for garbled in ("bounces+x.y@z", "bounces@morningpost.test", "", "news@morningpost.test"):
        assert parse_verp(garbled, settings) is None


def test_verp_made_with_an_older_key_still_verifies(settings: Settings) -> None:
    old = settings.model_copy(update={"secret_keys": ["an-old-key"]})
    assert parse_verp(verp_address(7, old), settings) == 7
    assert verp_address(7, old) != verp_address(7, settings)


@pytest.mark.parametrize(
    ("action", "status", "kind"),
    [
        ("failed", "5.1.1", BounceKind.hard),
        ("failed", "5.1.10", BounceKind.hard),
        ("failed", "5.2.2", BounceKind.soft),
        ("failed", "4.2.2", BounceKind.soft),
        ("failed", "5.7.1", BounceKind.policy),
        ("failed", "5.6.0", BounceKind.policy),
        ("failed", "5.1.8", BounceKind.policy),
        ("delayed", "4.4.7", BounceKind.delayed),
        ("delivered", "2.0.0", None),
        ("relayed", "2.0.0", None),
    ],
)
def test_classification(action: str, status: str, kind: BounceKind | None) -> None:
    assert classify(action, status, "") == kind


def test_parse_multi_recipient_dsn() -> None:
    report = parse_report((DATA / "dsn_multi.eml").read_bytes())
    assert report.is_report
    assert [(r.kind, r.recipient) for r in report.recipients] == [
        (BounceKind.soft, "family-list-member@elsewhere.example"),
        (BounceKind.hard, "@@rcpt@@"),
    ]
    assert report.original_message_id == "@@MESSAGE_ID@@"


# Webhook ------------------------------------------------------------------------------------

CASES = [
    ("dsn_5_1_1.eml", BounceKind.hard, "5.1.1", SubscriberStatus.bounced, "hard_bounce"),
    ("dsn_4_2_2.eml", BounceKind.soft, "4.2.2", SubscriberStatus.active, None),
    ("dsn_5_2_2.eml", BounceKind.soft, "5.2.2", SubscriberStatus.active, None),
    ("dsn_5_7_1.eml", BounceKind.policy, "5.7.1", SubscriberStatus.active, None),
    ("dsn_delayed.eml", BounceKind.delayed, "4.4.7", SubscriberStatus.active, None),
    ("dsn_multi.eml", BounceKind.hard, "5.1.1", SubscriberStatus.bounced, "hard_bounce"),
    ("arf_abuse.eml", BounceKind.complaint, "abuse", SubscriberStatus.complained, "complaint"),
]


@pytest.mark.parametrize(("name", "kind", "code", "status", "reason"), CASES)
def test_webhook_records_each_sample(
    hooks: TestClient,
    ctx: Context,
    name: str,
    kind: BounceKind,
    code: str,
    status: SubscriberStatus,
    reason: str | None,
) -> None:
    sub_id = add_subscribers(ctx, 1)[0]
    delivery_id = make_deliveries(ctx, [sub_id])[0]
    body = sample(name, ctx, delivery_id, "reader0@example.org")
    headers = {"Content-Type": "message/rfc822", **sign(ctx.settings, body)}
    r = hooks.post("/webhooks/bounce", content=body, headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["events"] == [{"kind": kind, "status": code}]
    assert subscriber_state(ctx, sub_id) == (status, reason)


def test_webhook_json_body_and_message_id_fallback(hooks: TestClient, ctx: Context) -> None:
    sub_id = add_subscribers(ctx, 1)[0]
    delivery_id = make_deliveries(ctx, [sub_id])[0]
    raw = sample("arf_abuse.eml", ctx, delivery_id, "reader0@example.org").decode()
    # No VERP anywhere: the original Message-ID names the delivery.
    raw = "\n".join(line for line in raw.splitlines() if "bounces+" not in line)
    body = json.dumps({"message": raw}).encode()
    headers = {"Content-Type": "application/json", **sign(ctx.settings, body)}
    r = hooks.post("/webhooks/bounce", content=body, headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["events"] == [{"kind": "complaint", "status": "abuse"}]
    assert subscriber_state(ctx, sub_id) == ("complained", "complaint")


def test_webhook_rejects_bad_signatures(hooks: TestClient, ctx: Context) -> None:
    body = (DATA / "dsn_5_1_1.eml").read_bytes()
    good = sign(ctx.settings, body)
    for headers in ({}, {"X-MorningPost-Signature": "sha256=00"}, sign(ctx.settings, body + b"x")):
        r = hooks.post("/webhooks/bounce", content=body, headers=headers)
        assert r.status_code == 401, headers
    assert hooks.post("/webhooks/bounce", content=body, headers=good).status_code == 202


def test_webhook_answers_401_to_a_signature_that_is_not_ascii(
    hooks: TestClient, ctx: Context
) -> None:
    """Issue 17 item 10: `sha256=é` without authentication was a 500."""
    body = (DATA / "dsn_5_1_1.eml").read_bytes()
    for value in ("sha256=é".encode(), "sha256=é".encode("latin-1"), b"sha256=\xff\xfe"):
        r = hooks.post("/webhooks/bounce", content=body, headers={"X-MorningPost-Signature": value})
        assert r.status_code == 401, (value, r.text)


def test_forged_verp_is_ignored(hooks: TestClient, ctx: Context) -> None:
    sub_id = add_subscribers(ctx, 1)[0]
    delivery_id = make_deliveries(ctx, [sub_id])[0]
    forged = f"bounces+{delivery_id}.0123456789abcdef@morningpost.test"
    raw = sample("dsn_5_1_1.eml", ctx, delivery_id, "reader0@example.org", VERP=forged)
    with session_scope(ctx.sessions) as session:
        assert record_inbound(session, raw, "webhook", ctx.settings, utcnow()) == []
        assert session.scalar(select(BounceEvent.id)) is None
    assert subscriber_state(ctx, sub_id) == ("active", None)


@pytest.mark.parametrize("report", ["dsn_5_1_1.eml", "arf_abuse.eml"])
def test_report_over_smtp_without_verp_cannot_name_a_delivery(report: str, ctx: Context) -> None:
    """Issue 9, item 2: anyone can mail bounces@; only a VERP tag (or a signed webhook) counts."""
    sub_id = add_subscribers(ctx, 1)[0]
    delivery_id = make_deliveries(ctx, [sub_id])[0]
    bare = f"bounces@{ctx.settings.verp_domain}"
    raw = sample(report, ctx, delivery_id, "reader0@example.org", VERP=bare, FBL=bare)
    with session_scope(ctx.sessions) as session:
        assert record_inbound(session, raw, "smtp", ctx.settings, utcnow(), [bare]) == []
    assert subscriber_state(ctx, sub_id) == ("active", None)
    # The same report through the signed webhook may name the delivery by its Message-ID.
    with session_scope(ctx.sessions) as session:
        assert record_inbound(session, raw, "webhook", ctx.settings, utcnow()) != []
    assert subscriber_state(ctx, sub_id)[0] != "active"


def test_soft_bounces_suppress_after_the_threshold_within_the_window(ctx: Context) -> None:
    sub_id = add_subscribers(ctx, 1)[0]
    deliveries = [make_deliveries(ctx, [sub_id], slug=f"issue-{i}")[0] for i in range(4)]
    now = utcnow()
    times = [now - timedelta(days=40), now - timedelta(days=10), now - timedelta(days=5), now]
    states = []
    for delivery_id, when in zip(deliveries, times, strict=True):
        raw = sample("dsn_4_2_2.eml", ctx, delivery_id, "reader0@example.org")
        with session_scope(ctx.sessions) as session:
            record_inbound(session, raw, "webhook", ctx.settings, when)
        states.append(subscriber_state(ctx, sub_id))
    # The first one is outside the 30-day window when the fourth arrives: 3 in the window.
    assert states == [("active", None)] * 3 + [("bounced", "soft_bounce")]
    # The same delivery reported twice counts once.
    other = add_subscribers(ctx, 1, domain="example.net")[0]
    d = make_deliveries(ctx, [other], slug="dup")[0]
    for _ in range(3):
        raw = sample("dsn_4_2_2.eml", ctx, d, "reader0@example.net")
        with session_scope(ctx.sessions) as session:
            record_inbound(session, raw, "webhook", ctx.settings, now)
    assert subscriber_state(ctx, other) == ("active", None)


def test_stats_count_by_kind_and_surface_policy_alerts(ctx: Context) -> None:
    subs = add_subscribers(ctx, 4)
    deliveries = make_deliveries(ctx, subs)
    for name, d, s in zip(
        ["dsn_5_1_1.eml", "dsn_4_2_2.eml", "dsn_5_7_1.eml", "arf_abuse.eml"],
        deliveries,
        range(4),
        strict=True,
    ):
        raw = sample(name, ctx, d, f"reader{s}@example.org")
        with session_scope(ctx.sessions) as session:
            record_inbound(session, raw, "smtp", ctx.settings, utcnow())
    with session_scope(ctx.sessions) as session:
        issue_id = session.get_one(Delivery, deliveries[0]).issue_id
        assert bounce_stats(session, issue_id) == {
            "hard": 1,
            "soft": 1,
            "complaints": 1,
            "policy_alerts": 1,
            "delayed": 0,
        }
        assert "DMARC" in policy_alerts(session, issue_id)[0]


# SMTP listener ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind", "code", "status", "reason"), CASES)
async def test_listener_records_each_sample(
    ctx: Context,
    name: str,
    kind: BounceKind,
    code: str,
    status: SubscriberStatus,
    reason: str | None,
) -> None:
    sub_id = add_subscribers(ctx, 1)[0]
    delivery_id = make_deliveries(ctx, [sub_id])[0]
    raw = sample(name, ctx, delivery_id, "reader0@example.org")
    port = free_port()
    server = await start_bounce_listener(ctx, "127.0.0.1", port)
    try:
        rcpt = (
            "bounces@morningpost.test"
            if name.startswith("arf")
            else verp_address(delivery_id, ctx.settings)
        )
        await send_raw(port, rcpt, raw)
    finally:
        server.close()
        await server.wait_closed()
    with session_scope(ctx.sessions) as session:
        events = session.scalars(select(BounceEvent)).all()
        assert [(e.kind, e.status_code, e.source, e.delivery_id) for e in events] == [
            (kind, code, "smtp", delivery_id)
        ]
    assert subscriber_state(ctx, sub_id) == (status, reason)


async def test_listener_refuses_other_recipients(ctx: Context) -> None:
    delivery_id = make_deliveries(ctx, add_subscribers(ctx, 1))[0]
    good = verp_address(delivery_id, ctx.settings)
    port = free_port()
    server = await start_bounce_listener(ctx, "127.0.0.1", port)
    try:
        for rcpt in (
            "news@morningpost.test",
            f"bounces+{delivery_id}.0123456789abcdef@morningpost.test",
            good.replace("morningpost.test", "elsewhere.example"),
        ):
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as exc:
                await send_raw(port, rcpt, b"Subject: x\r\n\r\nx\r\n")
            assert exc.value.recipients[0].code == 550
        # A non-report to a valid address is accepted and ignored (vacation replies).
        await send_raw(port, good, b"Subject: Out of office\r\n\r\nBack on Monday.\r\n")
    finally:
        server.close()
        await server.wait_closed()
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(BounceEvent.id)) is None
