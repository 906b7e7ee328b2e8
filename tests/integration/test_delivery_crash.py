"""A worker process killed or stopped mid-send: nothing lost, nothing sent twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.models import utcnow
from app.sends.smtp.mailer import make_mailer
from app.sends.store import lease
from app.sends.worker import Worker
from tests.delivery_support import add_issue, add_subscribers, deliveries, send_now, stats
from tests.helpers import start_worker
from tests.smtp_server import SMTPTestServer

RECIPIENTS = 300
BATCH = 10


def start_crash_worker(settings: Settings, tmp_path: Path) -> subprocess.Popen[bytes]:
    """Start a worker with small batches and a slow rate, so it can be killed mid-send."""
    return start_worker(
        settings,
        tmp_path,
        MORNINGPOST_BATCH_SIZE=str(BATCH),
        MORNINGPOST_RATE_PER_SECOND="50",
        MORNINGPOST_SMTP_CONNECTIONS="2",
    )


def seed(ctx: Context) -> tuple[int, list[str]]:
    """Create the subscribers and start an issue to all of them."""
    emails = [f"r{i:03d}@example.org" for i in range(RECIPIENTS)]
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    assert send_now(ctx, issue_id) == RECIPIENTS
    return issue_id, emails


def test_sigkill_mid_send_loses_nothing_and_sends_nothing_twice(
    settings: Settings, ctx: Context, smtp_server: SMTPTestServer, tmp_path: Path
) -> None:
    issue_id, emails = seed(ctx)
    proc = start_crash_worker(settings, tmp_path)
    try:
        smtp_server.handler.wait_for(60, timeout=60)
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert stats(ctx, issue_id)["sent"] < RECIPIENTS

    # The dead worker's leases run out; pass a future `now` rather than wait for it.
    with session_scope(ctx.sessions) as s:
        lease.expire_leases(s, utcnow() + timedelta(seconds=60))
    asyncio.run(Worker(ctx, make_mailer(settings)).run_until_idle())

    final = stats(ctx, issue_id)
    assert final["pending"] == final["sending"] == final["retry"] == 0
    assert final["sent"] + final["unknown"] == RECIPIENTS
    replies = Counter(r.last_reply for r in deliveries(ctx, issue_id).values()).most_common(4)
    assert final["unknown"] <= BATCH, (final, replies)  # says why if it fails
    copies = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    rows = deliveries(ctx, issue_id)
    for address in emails:
        if rows[address].status == "sent":
            assert copies[address] == 1, address
        else:
            assert rows[address].status == "unknown"
            assert copies[address] <= 1, address


def test_sigterm_releases_claims_and_resume_completes(
    settings: Settings, ctx: Context, smtp_server: SMTPTestServer, tmp_path: Path
) -> None:
    issue_id, emails = seed(ctx)
    proc = start_crash_worker(settings, tmp_path)
    try:
        smtp_server.handler.wait_for(30, timeout=60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]

    stopped = stats(ctx, issue_id)
    assert stopped["sending"] == 0  # finished or released, nothing left leased
    assert stopped["unknown"] == 0
    assert stopped["pending"] > 0

    asyncio.run(Worker(ctx, make_mailer(settings)).run_until_idle())

    final = stats(ctx, issue_id)
    assert final["sent"] == RECIPIENTS
    copies = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert copies == Counter(emails)


def test_a_commit_that_fails_once_loses_no_result_and_hands_nothing_twice(
    settings: Settings, ctx: Context, smtp_server: SMTPTestServer
) -> None:
    """A failed hand-over transaction (a deadlock, a restart) is tried again, not dropped."""
    issue_id, emails = seed(ctx)
    failures: list[int] = []

    class FlakyWorker(Worker):
        async def commit(self, results, handed, undo_bounces):  # type: ignore[no-untyped-def]
            if results and len(failures) < 2:
                failures.append(len(results))
                raise RuntimeError("deadlock detected (simulated)")
            return await super().commit(results, handed, undo_bounces)

    asyncio.run(FlakyWorker(ctx, make_mailer(settings)).run_until_idle())
    assert len(failures) == 2
    final = stats(ctx, issue_id)
    assert final["sent"] == RECIPIENTS and final["unknown"] == 0
    copies = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert copies == Counter(emails)  # every reader once
