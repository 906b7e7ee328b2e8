"""Sending politely: back off when the relay says 421/451 under load; per-domain budgets."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

import pytest
from sqlalchemy import select

from app.config import ConfigError, load_settings
from app.context import Context
from app.db import session_scope
from app.models import Delivery
from app.sends.policy import Outcome
from app.sends.smtp.mailer import make_mailer
from app.sends.throttle import AdaptiveRate, DomainSchedule, RateLimiter, is_throttle
from app.sends.worker import Worker
from tests.delivery_support import add_issue, add_subscribers, deliveries, send_now, stats
from tests.smtp_server import SMTPTestServer


def test_throttle_replies_are_recognised() -> None:
    for reply in ("421 4.7.0 Try later", "451 4.3.0 busy", "452 4.5.3 Too many", "450 busy"):
        assert is_throttle(reply)
    assert is_throttle("connect: 421 Service not available")
    assert is_throttle("554 4.7.1 policy")  # enhanced status 4.7.x
    # Amazon SES over SMTP, past its rate or its daily quota (no enhanced status code).
    assert is_throttle("454 Throttling failure: Maximum sending rate exceeded.")
    assert is_throttle("454 Throttling failure: Daily message quota exceeded.")
    assert not is_throttle("250 2.0.0 OK")
    assert not is_throttle("550 5.1.1 No such user")
    assert not is_throttle("454 4.4.2 connection lost")


def test_adaptive_rate_halves_once_per_burst_and_recovers_additively() -> None:
    limiter = RateLimiter(0)  # unlimited
    adaptive = AdaptiveRate(limiter)
    for i in range(100):
        adaptive.on_result("250 ok", Outcome.sent, now=10.0 + i / 200)  # 200/s observed
    assert adaptive.on_result("421 4.7.0 slow down", Outcome.retry, now=10.5)
    assert not adaptive.on_result("451 4.7.1 slow down", Outcome.retry, now=10.6)  # same burst
    assert adaptive.cuts == 1
    slowed = limiter.rate
    assert 0 < slowed < 200
    rates = []
    for second in range(1, 200):
        adaptive.on_result("250 ok", Outcome.sent, now=10.5 + second)
        rates.append(limiter.rate)
    assert rates[0] > slowed and rates[1] > rates[0]  # additive steps, one per second
    assert limiter.rate == 0  # back to the configured rate: unlimited


def test_domain_schedule_spaces_slots_and_defers_beyond_the_horizon() -> None:
    schedule = DomainSchedule({"slow.test": 2}, default=0, horizon=1.0)
    slots = [schedule.reserve("a@slow.test", 100.0) for _ in range(5)]
    assert [s for s, _ in slots[:3]] == [100.0, 100.5, 101.0]
    assert slots[3][0] == 0 and slots[3][1] > 1.0  # deferred, spaced at the rate
    assert slots[4][1] == pytest.approx(slots[3][1] + 0.5)
    assert schedule.reserve("b@fast.test", 100.0) == (100.0, 0.0)


def test_domain_rates_setting_is_parsed_and_checked() -> None:
    s = load_settings(domain_rates="Gmail.com=20, yahoo.com=2.5")
    assert s.domain_rates == {"gmail.com": 20.0, "yahoo.com": 2.5}
    with pytest.raises(ConfigError, match="MORNINGPOST_DOMAIN_RATES"):
        load_settings(domain_rates="gmail.com")


def test_relay_answering_421_and_451_under_load_slows_the_worker_and_the_send_completes(
    ctx: Context, smtp_server: SMTPTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    handler = smtp_server.handler
    handler.busy_limit = 40
    handler.busy_window = 0.5
    handler.busy_answers = ("421 4.7.0 Too many messages, slow down", "451 4.7.1 Rate limited")
    emails = [f"t{i}@example.org" for i in range(200)]
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    worker = Worker(ctx, make_mailer(ctx.settings))

    with caplog.at_level(logging.INFO, logger="morningpost.delivery"):
        deadline = time.monotonic() + 60
        while stats(ctx, issue_id)["sent"] < len(emails) and time.monotonic() < deadline:
            asyncio.run(worker.run_until_idle())

    final = stats(ctx, issue_id)
    assert final["sent"] == len(emails)
    assert final["failed"] == final["unknown"] == 0
    assert handler.busy_refusals > 0
    assert worker.adaptive.cuts >= 1  # the worker slowed down…
    assert "slowed to" in caplog.text  # …and said so in its batch line
    retried = [d for d in deliveries(ctx, issue_id).values() if d.attempts > 1]
    assert retried  # the refused messages were retried, not failed
    assert Counter(r.rcpt_tos[0] for r in handler.received) == Counter(emails)


def test_rows_over_a_domain_budget_are_deferred_without_an_attempt(
    ctx: Context, smtp_server: SMTPTestServer
) -> None:
    ctx.settings.domain_rates = {"slow.test": 5.0}
    slow = [f"s{i}@slow.test" for i in range(20)]
    fast = [f"f{i}@example.org" for i in range(30)]
    add_subscribers(ctx, slow + fast)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    worker = Worker(ctx, make_mailer(ctx.settings))

    asyncio.run(worker.run_until_idle())

    rows = deliveries(ctx, issue_id)
    assert all(rows[a].status == "sent" for a in fast)  # other domains are not held up
    waiting = [rows[a] for a in slow if rows[a].status != "sent"]
    assert waiting, "the slow domain should not have fit in one horizon"
    for row in waiting:
        assert row.status == "pending"
        assert row.attempts == 0  # a deferral is not an attempt
        assert row.last_reply is not None and row.last_reply.startswith("deferred")
        assert row.next_attempt_at is not None

    deadline = time.monotonic() + 30
    while stats(ctx, issue_id)["sent"] < 50 and time.monotonic() < deadline:
        asyncio.run(worker.run_until_idle())
        time.sleep(0.1)
    assert stats(ctx, issue_id)["sent"] == 50
    with session_scope(ctx.sessions) as s:
        attempts = set(s.scalars(select(Delivery.attempts).where(Delivery.issue_id == issue_id)))
    assert attempts == {1}
    copies = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert copies == Counter(slow + fast)
