"""End-to-end sends through the worker to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import re
from collections import Counter

import pytest
from sqlalchemy import select

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.delivery import build_worker
from app.errors import Conflict
from app.models import Issue, OutboxKind, OutboxMessage, Suppression, utcnow
from app.rendering import placeholders
from app.sends.smtp.mailer import CaptureMailer, make_mailer
from app.sends.store.sends import start_send
from app.tokens import hash_secret
from tests.delivery_support import (
    add_issue,
    add_subscribers,
    deliveries,
    send_now,
    stats,
    subscriber_status,
)
from tests.smtp_server import HANGUP, STALL, SMTPTestServer


async def run(ctx: Context) -> None:
    """Deliver everything claimable now through the configured relay."""
    await build_worker(ctx).run_until_idle()


async def test_full_send_reaches_every_active_subscriber_once(
    ctx: Context, smtp_server: SMTPTestServer
) -> None:
    emails = [f"reader{i}@example.org" for i in range(7)]
    ids = dict(zip(emails, add_subscribers(ctx, emails), strict=True))
    add_subscribers(ctx, ["pending@example.org"], status="pending")
    add_subscribers(ctx, ["gone@example.org"], status="unsubscribed")
    issue_id = add_issue(ctx, subject="Grüße: Morning news")
    assert send_now(ctx, issue_id) == 7

    await run(ctx)

    got = smtp_server.handler.received
    assert Counter(r.rcpt_tos[0] for r in got) == Counter(emails)
    rows = deliveries(ctx, issue_id)
    for received in got:
        to = received.rcpt_tos[0]
        raw = received.data
        assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
        msg = received.message()
        assert msg["To"] == to
        assert msg["Subject"] == "Grüße: Morning news"
        assert msg["Message-ID"] == rows[to].message_id
        # Unguessable: the ids plus a 128-bit random tag (issue 9, item 2).
        assert re.fullmatch(
            rf"<mp\.{issue_id}\.{rows[to].id}\.[0-9a-f]{{32}}@morningpost\.test>",
            rows[to].message_id,
        )
        assert msg["List-Id"] == "The AI Morning Post <newsletter.morningpost.test>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsub = msg["List-Unsubscribe"]
        url = unsub.split("<", 1)[1].split(">", 1)[0]
        assert url.startswith("http://testserver/unsubscribe/")
        token = url.rsplit("/", 1)[1]
        assert ctx.tokens.read_unsubscribe_token(token) == ids[to]
        assert "<mailto:news+unsubscribe@morningpost.test?subject=unsubscribe" in unsub
        assert msg.get_content_type() == "multipart/alternative"
        plain, related = msg.get_payload()  # type: ignore[misc]
        assert plain.get_content_type() == "text/plain"
        assert related.get_content_type() == "multipart/related"
        html_part, image = related.get_payload()
        assert html_part.get_content_type() == "text/html"
        assert image.get_content_type() == "image/png"
        assert f"cid:{image['Content-ID'].strip('<>')}" in html_part.get_content()
        for part in (plain, html_part):
            body = part.get_content()
            assert token in body
            nonce = ctx.tokens.open_unsubscribe_token(token).nonce
            assert nonce is not None  # the reader's own, checked in test_ids_and_list_tokens
            assert ctx.tokens.preferences_token(ids[to], nonce) in body
            for ph in placeholders.ALL:
                assert ph not in body
    assert all(r.status == "sent" and r.attempts == 1 for r in rows.values())
    assert stats(ctx, issue_id) == {
        "recipients": 7, "pending": 0, "sending": 0, "sent": 7, "retry": 0,
        "failed": 0, "unknown": 0, "cancelled": 0,
    }  # fmt: skip
    with session_scope(ctx.sessions) as s:
        assert s.get(Issue, issue_id).status == "sent"  # type: ignore[union-attr]


async def test_temporary_failures_are_retried(ctx: Context, smtp_server: SMTPTestServer) -> None:
    add_subscribers(ctx, ["slow@example.org", "ok@example.org"])
    smtp_server.handler.plan("slow@example.org", "451 4.3.0 Try later", "451 4.3.0 Try later")
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)

    await run(ctx)  # retry_backoff_seconds=0 in tests: retries are due at once

    rows = deliveries(ctx, issue_id)
    assert rows["slow@example.org"].status == "sent"
    assert rows["slow@example.org"].attempts == 3
    assert len(smtp_server.handler.to("slow@example.org")) == 1
    assert len(smtp_server.handler.to("ok@example.org")) == 1


async def test_retries_give_up_after_max_attempts(
    ctx: Context, smtp_server: SMTPTestServer
) -> None:
    ctx.settings.max_attempts = 2
    add_subscribers(ctx, ["full@example.org"])
    smtp_server.handler.plan("full@example.org", *["452 4.2.2 Mailbox full"] * 3)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    await run(ctx)
    row = deliveries(ctx, issue_id)["full@example.org"]
    assert (row.status, row.attempts) == ("failed", 2)
    assert "452" in (row.last_reply or "")


async def test_hard_bounce_suppresses_and_next_freeze_skips(
    ctx: Context, smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, ["nobody@example.org", "policy@example.org", "ok@example.org"])
    smtp_server.handler.plan("nobody@example.org", "550 5.1.1 No such user")
    smtp_server.handler.plan("policy@example.org", "550 5.7.1 Rejected by policy")
    first = add_issue(ctx)
    send_now(ctx, first)
    await run(ctx)

    rows = deliveries(ctx, first)
    assert rows["nobody@example.org"].status == "failed"
    assert rows["policy@example.org"].status == "failed"
    assert subscriber_status(ctx, "nobody@example.org") == "bounced"
    assert subscriber_status(ctx, "policy@example.org") == "active"
    with session_scope(ctx.sessions) as s:
        hashes = set(s.scalars(select(Suppression.email_hash)))
    assert hash_secret("nobody@example.org") in hashes
    assert hash_secret("policy@example.org") not in hashes

    second = add_issue(ctx, slug="issue-2")
    assert send_now(ctx, second) == 2
    assert "nobody@example.org" not in deliveries(ctx, second)


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
async def test_hangup_after_data_is_unknown_and_not_resent(
    ctx: Context, smtp_server: SMTPTestServer, pipelining: bool
) -> None:
    smtp_server.handler.pipelining = pipelining
    add_subscribers(ctx, ["hangup@example.org", "after@example.org"])
    smtp_server.handler.plan("hangup@example.org", HANGUP)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    await run(ctx)
    await run(ctx)
    rows = deliveries(ctx, issue_id)
    assert rows["hangup@example.org"].status == "unknown"
    assert smtp_server.handler.attempts["hangup@example.org"] == 1
    assert rows["after@example.org"].status == "sent"  # the pool reconnected


async def test_stall_after_data_is_unknown(
    settings: Settings, ctx: Context, smtp_server: SMTPTestServer
) -> None:
    settings.smtp_timeout_seconds = 0.5
    smtp_server.handler.stall_seconds = 3
    add_subscribers(ctx, ["stall@example.org"])
    smtp_server.handler.plan("stall@example.org", STALL)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    await run(ctx)
    row = deliveries(ctx, issue_id)["stall@example.org"]
    assert row.status == "unknown"
    assert "timed out" in (row.last_reply or "")
    assert smtp_server.handler.attempts["stall@example.org"] == 1


class RefusingHandler:
    """Refuse RCPT for some addresses and MAIL when the sender is blocked (aiosmtpd hooks)."""

    def __init__(self, rcpt: dict[str, str], mail: str | None = None) -> None:
        self.rcpt, self.mail = rcpt, mail

    async def handle_MAIL(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        if self.mail:
            return self.mail
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        if address in self.rcpt:
            return self.rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
async def test_refused_rcpt_is_retry_or_failed_never_unknown(
    ctx: Context, smtp_server: SMTPTestServer, pipelining: bool
) -> None:
    smtp_server.handler.pipelining = pipelining
    refusing = RefusingHandler(
        {"later@example.org": "450 4.2.1 Busy", "nouser@example.org": "550 5.1.1 Unknown user"}
    )
    scripted = smtp_server.handler
    scripted.handle_RCPT = refusing.handle_RCPT  # type: ignore[attr-defined]
    add_subscribers(ctx, ["later@example.org", "nouser@example.org", "fine@example.org"])
    ctx.settings.max_attempts = 2
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    await run(ctx)
    rows = deliveries(ctx, issue_id)
    assert rows["later@example.org"].status == "failed"  # retried, then gave up
    assert rows["later@example.org"].attempts == 2
    assert rows["nouser@example.org"].status == "failed"
    assert rows["nouser@example.org"].attempts == 1
    assert subscriber_status(ctx, "nouser@example.org") == "bounced"
    assert rows["fine@example.org"].status == "sent"  # RSET kept the reused connection usable


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
async def test_refused_mail_from_is_retry(
    ctx: Context, smtp_server: SMTPTestServer, pipelining: bool
) -> None:
    smtp_server.handler.pipelining = pipelining
    refusing = RefusingHandler({}, mail="451 4.7.1 Greylisted")
    smtp_server.handler.handle_MAIL = refusing.handle_MAIL  # type: ignore[attr-defined]
    add_subscribers(ctx, ["grey@example.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    mailer = make_mailer(ctx.settings)
    assert await build_worker(ctx, mailer).run_once()
    await mailer.aclose()
    row = deliveries(ctx, issue_id)["grey@example.org"]
    assert row.status == "retry"
    assert row.attempts == 1
    assert subscriber_status(ctx, "grey@example.org") == "active"


async def test_unreachable_relay_is_retry(settings: Settings, ctx: Context) -> None:
    settings.smtp_url = "smtp+plain://127.0.0.1:9"  # discard port: nothing listens
    add_subscribers(ctx, ["a@example.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    mailer = make_mailer(settings)
    await build_worker(ctx, mailer).run_once()
    await mailer.aclose()
    assert deliveries(ctx, issue_id)["a@example.org"].status == "retry"


async def test_repeated_start_send_conflicts_and_sends_once(
    ctx: Context, smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, ["once@example.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    with pytest.raises(Conflict), session_scope(ctx.sessions) as s:
        start_send(s, issue_id, utcnow())
    await run(ctx)
    with pytest.raises(Conflict), session_scope(ctx.sessions) as s:
        start_send(s, issue_id, utcnow())
    await run(ctx)
    assert len(smtp_server.handler.to("once@example.org")) == 1
    assert stats(ctx, issue_id)["recipients"] == 1


async def test_capture_mailer_writes_parseable_eml(settings: Settings, ctx: Context) -> None:
    settings.smtp_url = None
    add_subscribers(ctx, ["cap@example.org", "cap2@example.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    mailer = make_mailer(settings)
    assert isinstance(mailer, CaptureMailer)
    await build_worker(ctx, mailer).run_until_idle()
    files = sorted(settings.outbox_dir.glob("*.eml"))
    assert len(files) == 2
    rows = deliveries(ctx, issue_id)
    for path in files:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert msg["To"] in rows
        assert msg["Message-ID"] == rows[msg["To"]].message_id
        assert msg.get_body(("html",)) is not None
        assert not list(settings.outbox_dir.glob("*.tmp*"))


async def test_outbox_confirmation_and_test_copies(
    ctx: Context, smtp_server: SMTPTestServer
) -> None:
    (sub_id,) = add_subscribers(ctx, ["new@example.org"], status="pending")
    issue_id = add_issue(ctx, subject="Draft issue")
    with session_scope(ctx.sessions) as s:
        s.add(
            OutboxMessage(
                kind=OutboxKind.confirm, to_address="new@example.org", subscriber_id=sub_id
            )
        )
        s.add(
            OutboxMessage(kind=OutboxKind.test, to_address="editor@example.org", issue_id=issue_id)
        )
    await run(ctx)
    (confirm,) = smtp_server.handler.to("new@example.org")
    msg = confirm.message()
    assert msg["List-Unsubscribe"] is None
    body = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    token = body.split("/confirm/", 1)[1].split()[0]
    assert ctx.tokens.read_confirm_token(token)[0] == sub_id
    (test_copy,) = smtp_server.handler.to("editor@example.org")
    assert test_copy.message()["Subject"] == "[TEST] Draft issue"
    assert stats(ctx, issue_id)["recipients"] == 0  # test copies are not deliveries
    with session_scope(ctx.sessions) as s:
        assert set(s.scalars(select(OutboxMessage.status))) == {"sent"}
