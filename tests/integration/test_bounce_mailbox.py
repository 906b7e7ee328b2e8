"""The bounce mailbox (MORNINGPOST_BOUNCE_MAILBOX) against a real Dovecot: IMAPS, IMAP with
STARTTLS and POP3S; reports handled as the SMTP listener handles them, the rest left alone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from app.bounces.mailbox import MailboxError, Poller, run_bounce_mailbox
from app.config import Settings
from app.context import Context, build_context
from app.db import session_scope
from app.models import BounceEvent, SubscriberStatus
from tests.bounce_support import make_deliveries, sample, subscriber_state
from tests.helpers import add_subscribers
from tests.imap_server import Dovecot

NOT_A_REPORT = (
    b"From: Reader <reader@example.org>\r\nTo: bounces@morningpost.test\r\n"
    b"Subject: Out of office\r\nMessage-ID: <ooo-1@example.org>\r\n\r\nBack on Monday.\r\n"
)


@pytest.fixture
def dovecot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dovecot]:
    """Start Dovecot for this test and trust its certificate."""
    server = Dovecot()
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
    yield server
    server.stop()


def mailbox_ctx(settings: Settings, engine: Engine, url: str) -> Context:
    """Return a context whose settings poll `url`."""
    update = {"bounce_mailbox": url, "bounce_mailbox_interval_seconds": 0.05}
    return build_context(settings.model_copy(update=update), engine=engine)


def events(ctx: Context) -> int:
    """Return how many bounce events are recorded."""
    with session_scope(ctx.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(BounceEvent)) or 0)


@pytest.mark.parametrize("scheme", ["imaps", "imap"])
def test_imap_reports_are_recorded_and_moved_and_the_rest_stays_reported_once(
    dovecot: Dovecot,
    settings: Settings,
    engine: Engine,
    scheme: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = mailbox_ctx(settings, engine, dovecot.url(scheme))
    subs = add_subscribers(ctx, 2)
    d1, d2 = make_deliveries(ctx, subs)
    dovecot.deliver(sample("dsn_5_1_1.eml", ctx, d1, "reader0@example.org"))
    dovecot.deliver(sample("arf_abuse.eml", ctx, d2, "reader1@example.org"))
    dovecot.deliver(NOT_A_REPORT)
    poller = Poller(ctx)
    caplog.set_level(logging.WARNING, logger="morningpost.bounces.mailbox")
    assert poller.poll_once() == (2, 1)
    assert subscriber_state(ctx, subs[0]) == (SubscriberStatus.bounced, "hard_bounce")
    assert subscriber_state(ctx, subs[1]) == (SubscriberStatus.complained, "complaint")
    assert dovecot.count("INBOX") == 1
    assert dovecot.count("Processed") == 2
    assert poller.poll_once() == (0, 1)  # the stranger's message stays, and is reported once
    assert sum("not a DSN" in r.getMessage() for r in caplog.records) == 1


def test_pop3_deletes_reports_and_keeps_the_rest(
    dovecot: Dovecot, settings: Settings, engine: Engine
) -> None:
    ctx = mailbox_ctx(settings, engine, dovecot.url("pop3s"))
    subs = add_subscribers(ctx, 1)
    (d1,) = make_deliveries(ctx, subs)
    dovecot.deliver(sample("dsn_5_1_1.eml", ctx, d1, "reader0@example.org"))
    dovecot.deliver(NOT_A_REPORT)
    assert Poller(ctx).poll_once() == (1, 1)
    assert subscriber_state(ctx, subs[0]) == (SubscriberStatus.bounced, "hard_bounce")
    assert dovecot.count("INBOX") == 1


def test_a_report_without_a_verp_tag_names_no_delivery_and_one_seen_twice_counts_once(
    dovecot: Dovecot, settings: Settings, engine: Engine
) -> None:
    ctx = mailbox_ctx(settings, engine, dovecot.url("imaps"))
    subs = add_subscribers(ctx, 2)
    d1, d2 = make_deliveries(ctx, subs)
    # Anyone can mail the bounce mailbox: a report naming only a Message-ID is ignored.
    forged = sample("dsn_5_1_1.eml", ctx, d2, "reader1@example.org", VERP="bounces@example.net")
    dovecot.deliver(forged)
    report = sample("dsn_5_1_1.eml", ctx, d1, "reader0@example.org")
    dovecot.deliver(report)
    dovecot.deliver(report)  # the same message twice (a move that failed after the record)
    assert Poller(ctx).poll_once() == (3, 0)
    assert subscriber_state(ctx, subs[1]) == (SubscriberStatus.active, None)
    assert events(ctx) == 1


def test_a_wrong_password_is_one_clear_error(
    dovecot: Dovecot, settings: Settings, engine: Engine
) -> None:
    url = dovecot.url("imaps").replace("a-mailbox-password", "wrong")
    with pytest.raises(MailboxError, match="localhost"):
        Poller(mailbox_ctx(settings, engine, url)).poll_once()


async def test_the_worker_loop_polls_until_stopped(
    dovecot: Dovecot, settings: Settings, engine: Engine
) -> None:
    ctx = mailbox_ctx(settings, engine, dovecot.url("imaps"))
    subs = add_subscribers(ctx, 1)
    (d1,) = make_deliveries(ctx, subs)
    stop = asyncio.Event()
    task = asyncio.create_task(run_bounce_mailbox(ctx, stop))
    await asyncio.to_thread(
        dovecot.deliver, sample("dsn_5_1_1.eml", ctx, d1, "reader0@example.org")
    )
    async with asyncio.timeout(20):
        while events(ctx) == 0:
            await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert subscriber_state(ctx, subs[0]) == (SubscriberStatus.bounced, "hard_bounce")
