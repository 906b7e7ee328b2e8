"""Relay quotas (issue 21): the daily quota turns at UTC midnight; workers share quota and rate.

The pool's clock is the one the daily quota counts by (RelayPool(clock=...)); the test sets it
to a minute before midnight, then after. Copies are counted at the test's own SMTP servers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from app.audience.newsletters import create_newsletter, set_subscription
from app.config import Settings
from app.context import Context, build_context
from app.db import session_scope
from app.delivery import build_worker
from app.models import Issue, RelayUsage, SubscriptionStatus, utcnow
from app.sends.policy import Outcome
from app.sends.smtp.relays import RelayObserver, RelayPool
from app.sends.store import relays as store_relays
from tests.helpers import add_subscribers, new_issue
from tests.smtp_server import SMTPTestServer


@pytest.fixture
def pair() -> Iterator[list[SMTPTestServer]]:
    """Two real SMTP servers of this test's own."""
    servers = [SMTPTestServer().start() for _ in range(2)]
    yield servers
    for s in servers:
        s.stop()


def _relay_ctx(ctx: Context, smtp_url: str, **more: object) -> Context:
    settings = ctx.settings.model_copy(
        update={"smtp_url": smtp_url, "relay_rest_seconds": 0.3, **more}
    )
    return build_context(Settings.model_validate(settings.model_dump()), engine=ctx.engine)


def _pool(rctx: Context, **more: Any) -> RelayPool:
    s = rctx.settings
    return RelayPool(
        s.relays,
        timeout=s.smtp_timeout_seconds,
        max_idle=s.smtp_connections,
        rest_seconds=s.relay_rest_seconds,
        engine=rctx.engine,
        **more,
    )


def _issue(ctx: Context, issue_id: int) -> Issue:
    with session_scope(ctx.sessions) as session:
        issue = session.get_one(Issue, issue_id)
        session.expunge(issue)
        return issue


def _usage(ctx: Context) -> dict[tuple[str, date], int]:
    with session_scope(ctx.sessions) as session:
        rows = session.execute(select(RelayUsage.relay, RelayUsage.day, RelayUsage.count))
        return {(relay, day): count for relay, day, count in rows}


def test_a_send_paused_over_quota_resumes_by_itself_after_utc_midnight(
    ctx: Context, client: Any, editor: dict[str, str], pair: list[SMTPTestServer]
) -> None:
    x, y = pair
    rctx = _relay_ctx(ctx, f"{x.url}?name=xray&daily=5,{y.url}?name=yankee")
    with session_scope(ctx.sessions) as session:
        alpha = create_newsletter(
            session, {"slug": "alpha", "name": "Alpha", "relay": "xray"}, utcnow(), relays=["xray"]
        )
        session.flush()
        alpha_id = alpha.id
    ids = add_subscribers(ctx, 8)
    with session_scope(ctx.sessions) as session:
        for sid in ids:
            set_subscription(session, sid, alpha_id, SubscriptionStatus.active, utcnow())
    issue = new_issue(client, editor, newsletter="alpha")
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202

    clock = [datetime(2030, 1, 1, 23, 59, 30, tzinfo=UTC)]
    # What morningpost_relay_up says of each relay (the observer app.delivery wires to it).
    up: dict[str, bool] = {}
    observer = RelayObserver(state=lambda relay, now_up: up.__setitem__(relay, now_up))
    pool = _pool(rctx, clock=lambda: clock[0], observer=observer)
    worker = build_worker(rctx, pool)

    async def scenario() -> None:
        # One event loop, as in a long-running worker: the pool lives across the midnight.
        await worker.run_until_idle()
        assert len(x.handler.received) == 5, "xray's quota for the day"
        assert y.handler.received == [], "no fallback to the relay the newsletter did not choose"
        paused = _issue(ctx, issue["id"])
        assert paused.status == "paused"
        assert (paused.pause_reason or "").startswith(
            "paused: relay xray cannot send now: daily quota of 5 used, resets at 00:00 UTC"
        )

        await worker.run_until_idle()  # still the same UTC day: nothing moves
        assert _issue(ctx, issue["id"]).status == "paused" and len(x.handler.received) == 5
        assert up["xray"] is False and up["yankee"] is True

        clock[0] = datetime(2030, 1, 2, 0, 0, 5, tzinfo=UTC)  # the UTC day turns
        for _ in range(10):  # the pool resumes the send on its next look, the worker sends
            await worker.run_until_idle()
            if _issue(ctx, issue["id"]).status == "sent":
                break

    asyncio.run(scenario())
    assert _issue(ctx, issue["id"]).status == "sent"
    assert up["xray"] is True, "a new UTC day: the relay's gauge is up again"
    everyone = Counter(r.rcpt_tos[0] for r in x.handler.received)
    assert everyone == Counter(f"reader{i}@example.org" for i in range(8))
    usage = _usage(ctx)
    assert usage[("xray", date(2030, 1, 1))] == 5
    assert usage[("xray", date(2030, 1, 2))] == 3


def test_two_workers_share_one_relays_daily_quota_and_rate(
    ctx: Context, client: Any, editor: dict[str, str], pair: list[SMTPTestServer]
) -> None:
    x = pair[0]
    stamps: list[float] = []
    answer = x.handler.handle_DATA

    async def timed(server: Any, session: Any, envelope: Any) -> str:
        stamps.append(time.monotonic())
        return await answer(server, session, envelope)

    x.handler.handle_DATA = timed  # type: ignore[method-assign]
    # Small batches, so both workers hold rows at once and race for the one relay.
    rctx = _relay_ctx(ctx, f"{x.url}?name=xray&daily=30&rate=20", batch_size=4)
    add_subscribers(ctx, 60)
    issue = new_issue(client, editor)
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202

    sent_by: list[Counter[str]] = [Counter(), Counter()]

    def work(n: int) -> None:
        def count(relay: str, outcome: str, reply: str) -> None:
            sent_by[n][outcome] += 1

        pool = _pool(rctx, observer=RelayObserver(result=count))
        asyncio.run(build_worker(rctx, pool).run_until_idle())

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    got = Counter(r.rcpt_tos[0] for r in x.handler.received)
    assert sum(got.values()) == 30, "the relay's daily quota, across both workers"
    assert all(n == 1 for n in got.values())
    assert sent_by[0]["sent"] > 0 and sent_by[1]["sent"] > 0, sent_by
    assert sent_by[0]["sent"] + sent_by[1]["sent"] == 30
    # 30 messages at 20/s across both workers span at least 1.45 s (two workers each keeping
    # 20/s on their own would take about 0.75 s); slower is only the machine.
    assert stamps[-1] - stamps[0] >= 1.3, stamps[-1] - stamps[0]
    stopped = _issue(ctx, issue["id"])
    assert stopped.status == "paused"
    assert "xray: daily quota of 30 used" in (stopped.pause_reason or "")
    today = utcnow().date()
    assert _usage(ctx)[("xray", today)] == 30


def test_quota_another_worker_gives_back_is_used_again_the_same_day(
    ctx: Context, pair: list[SMTPTestServer]
) -> None:
    """A worker reserves the quota in blocks; what it gives back is quota again for the others.

    One worker holds the last block while another finds the day used up. Once the first
    gives back what it did not use (its stream ended), the second must send with it, not
    believe the quota used for the rest of the UTC day (and pause every send it touches).
    """
    x = pair[0]
    rctx = _relay_ctx(ctx, f"{x.url}?name=xray&daily=100")  # reserved in blocks of 5
    with session_scope(ctx.sessions) as session:  # 95 sent earlier today
        store_relays.reserve_daily(session.connection(), "xray", utcnow().date(), 95, 100)
    data = b"Subject: quota\r\n\r\nHello\r\n"
    sender = "news@example.org"

    async def scenario() -> None:
        one, two = _pool(rctx), _pool(rctx)
        try:
            async with one.connection() as conn:
                first = await conn.send(sender, "a@example.org", data)
                assert first.outcome == Outcome.sent  # took a block of 5, used 1
                async with two.connection() as other:
                    held = await other.send(sender, "b@example.org", data)
                    assert held.withheld, "all 100 sent or reserved: none for now"
            await one.aclose()  # its stream is over: the 4 it did not use go back
            assert _usage(ctx)[("xray", utcnow().date())] == 96
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                async with two.connection() as other:
                    again = await other.send(sender, "b@example.org", data)
                if not again.withheld:
                    break
                await asyncio.sleep(0.25)
            assert again.outcome == Outcome.sent, again
        finally:
            await two.aclose()

    asyncio.run(scenario())
    assert Counter(r.rcpt_tos[0] for r in x.handler.received) == Counter(
        ["a@example.org", "b@example.org"]
    )
    assert _usage(ctx)[("xray", utcnow().date())] == 97, "every message counted, once"
