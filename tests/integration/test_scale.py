"""Scale: several worker processes share one send on PostgreSQL; leases outlive long batches."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.models import Delivery, utcnow
from app.rendering.blocks import parse_blocks
from app.rendering.placeholders import LIST_TOKEN_LENGTH
from app.sends.compose import PreparedMessage, stuff_pieces
from app.sends.smtp.mailer import _unstuff, dot_stuff, make_mailer
from app.sends.store import lease
from app.sends.worker import Worker
from tests.delivery_support import (
    BLOCKS,
    add_issue,
    add_subscribers,
    deliveries,
    pg_only,
    send_now,
    stats,
    stop_all,
    wait_until,
)
from tests.helpers import start_worker
from tests.smtp_server import SMTPTestServer


@pg_only
def test_three_workers_share_a_send_and_a_sigkill_loses_nothing(
    settings: Settings, ctx: Context, smtp_server: SMTPTestServer, tmp_path: Path
) -> None:
    batch = 50
    emails = [f"w{i:04d}@example.org" for i in range(2000)]
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    assert send_now(ctx, issue_id) == len(emails)
    env = {"MORNINGPOST_BATCH_SIZE": str(batch), "MORNINGPOST_SMTP_CONNECTIONS": "2"}
    procs = [start_worker(settings, tmp_path, **env) for _ in range(3)]
    try:
        smtp_server.handler.wait_for(500, timeout=60)
        procs[0].kill()  # SIGKILL mid-send: no chance to release or record
        procs[0].communicate(timeout=10)
        # One read of the counts: two reads could straddle the reaper moving the dead worker's
        # rows from `sending` back to `pending`, and see neither.
        done = wait_until(lambda: _finished(stats(ctx, issue_id)), 90)
    finally:
        tails = stop_all(procs[1:])
    assert done, tails
    assert procs[0].returncode == -signal.SIGKILL

    final = stats(ctx, issue_id)
    assert final["sent"] + final["unknown"] == len(emails), final
    assert final["unknown"] <= batch  # the killed worker's in-flight window, no more
    copies = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    rows = deliveries(ctx, issue_id)
    owners = Counter(r.lease_owner for r in rows.values() if r.status == "sent")
    assert len(owners) == 3, owners  # all three took part
    for address in emails:
        if rows[address].status == "sent":
            assert copies[address] == 1, address
        else:
            assert rows[address].status == "unknown"
            assert copies[address] <= 1, address


def _finished(s: dict[str, int]) -> bool:
    return s["pending"] == s["sending"] == s["retry"] == 0


def owners_by_pid(ctx: Context) -> set[int]:
    """Return the pids of the workers that have claimed rows (lease_owner is host:pid:nonce)."""
    with session_scope(ctx.sessions) as s:
        owners = s.scalars(select(Delivery.lease_owner).distinct()).all()
    return {int(o.split(":")[1]) for o in owners if o}


@pg_only
def test_sigterm_to_one_of_two_workers_is_graceful(
    settings: Settings, ctx: Context, smtp_server: SMTPTestServer, tmp_path: Path
) -> None:
    emails = [f"g{i:03d}@example.org" for i in range(600)]
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    # A slow relay until both workers hold rows: on a loaded machine one worker can still be
    # importing (and would die of a SIGTERM, Python's default) while the other sends everything.
    smtp_server.handler.delay_seconds = 0.5
    env = {"MORNINGPOST_BATCH_SIZE": "40", "MORNINGPOST_SMTP_CONNECTIONS": "2"}
    procs = [start_worker(settings, tmp_path, **env) for _ in range(2)]
    try:
        started = wait_until(lambda: owners_by_pid(ctx) >= {p.pid for p in procs}, 90)
        assert started, (owners_by_pid(ctx), [p.pid for p in procs])
        smtp_server.handler.delay_seconds = 0.005
        smtp_server.handler.wait_for(100, timeout=60)
        (tail,) = stop_all(procs[:1])
        assert procs[0].returncode == 0, tail
        # A liveness bound on a shared, noisy machine; it normally takes a few seconds.
        done = wait_until(lambda: stats(ctx, issue_id)["sent"] == len(emails), 180)
        assert done, stats(ctx, issue_id)
    finally:
        stop_all(procs[1:])
    final = stats(ctx, issue_id)
    assert final["unknown"] == 0  # released, not abandoned
    assert Counter(r.rcpt_tos[0] for r in smtp_server.handler.received) == Counter(emails)


async def test_a_batch_that_outlives_its_lease_is_renewed_not_marked_unknown(
    ctx: Context, smtp_server: SMTPTestServer
) -> None:
    settings = ctx.settings
    settings.lease_seconds = 5  # the minimum; renewed every 5/3 s
    settings.batch_size = 24
    settings.smtp_connections = 1
    smtp_server.handler.delay_seconds = 0.25  # one batch takes ~6 s > the lease
    emails = [f"l{i:02d}@example.org" for i in range(24)]
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    expired: list[int] = []

    async def another_worker_housekeeping() -> None:
        # What a second worker does every iteration: expire leases that ran out.
        while True:
            await asyncio.sleep(0.2)
            with session_scope(ctx.sessions) as s:
                expired.append(lease.expire_leases(s, utcnow()))

    keeper = asyncio.create_task(another_worker_housekeeping())
    try:
        await Worker(ctx, make_mailer(settings)).run_until_idle()
    finally:
        keeper.cancel()
    final = stats(ctx, issue_id)
    assert final["sent"] == len(emails), final
    assert final["unknown"] == 0
    assert not any(expired)
    assert Counter(r.rcpt_tos[0] for r in smtp_server.handler.received) == Counter(emails)


def test_wire_bytes_are_the_filled_message_dot_stuffed(ctx: Context) -> None:
    rng = random.Random(7)
    compiled = ctx.renderer.compile_issue(
        subject="Dots", preheader="", slug="dots", blocks=parse_blocks(BLOCKS)
    )
    real = PreparedMessage.build(compiled, ctx.settings)
    # A synthetic template where tokens and literals start lines with and without dots.
    pieces = (b".lead\r\n", (0, 0, 8), b"\r\n", (1, 8, 20), b"=\r\n", (0, 20, 30), b"\r\n.x")
    synthetic = PreparedMessage(pieces, "a@b.test", stuff_pieces(pieces))
    for prepared in (real, synthetic):
        for _ in range(50):
            tokens = [
                "".join(rng.choice("..ab-_9") for _ in range(LIST_TOKEN_LENGTH)) for _ in "uv"
            ]
            fields = dict(
                to="r@example.org",
                unsubscribe_token=tokens[0],
                preferences_token=tokens[1],
                message_id="<m@x>",
                date="Mon, 07 Dec 2026 06:00:00 +0000",
            )
            plain = prepared.fill(**fields)
            wire = prepared.fill_wire(**fields)
            assert wire == dot_stuff(plain)
            assert _unstuff(wire) == (plain if plain.endswith(b"\r\n") else plain + b"\r\n")
