"""GET /metrics: bearer-protected, parsed with prometheus-client, figures from a real send."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from app.context import Context
from app.db import session_scope
from app.delivery import build_worker
from app.metrics.process import classify
from app.models import DeliveryStatus, Heartbeat
from app.webhooks.sender import run_webhook_sender
from tests.delivery_support import add_issue, add_subscribers, send_now
from tests.helpers import start_worker
from tests.smtp_server import SMTPTestServer, free_port


def scrape(client: TestClient, headers: dict[str, str]) -> dict[tuple[str, tuple[str, ...]], float]:
    """Return every sample as {(name, sorted label pairs): value}."""
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[str, ...]], float] = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            labels = tuple(f"{k}={v}" for k, v in sorted(s.labels.items()))
            samples[(s.name, labels)] = s.value
    return samples


def test_metrics_need_a_token(client: TestClient, ctx: Context) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Basic abc"}).status_code == 401


def test_metrics_token_from_the_settings_works(client: TestClient, ctx: Context) -> None:
    ctx.settings.metrics_token = "prom-secret-token"
    ok = client.get("/metrics", headers={"Authorization": "Bearer prom-secret-token"})
    assert ok.status_code == 200
    assert "morningpost_deliveries" in ok.text


def test_deliveries_gauge_and_smtp_counters_match_a_real_send(
    client: TestClient, ctx: Context, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    emails = [f"reader{i}@example.org" for i in range(4)]
    add_subscribers(ctx, [*emails, "full@example.org", "gone@example.org"])
    smtp_server.handler.plan("full@example.org", "452 4.2.2 Mailbox full")
    smtp_server.handler.plan("gone@example.org", "550 5.1.1 No such user")
    issue_id = add_issue(ctx)
    before = scrape(client, editor)
    assert send_now(ctx, issue_id) == 6

    queued = scrape(client, editor)
    assert queued[("morningpost_deliveries", ("status=pending",))] == 6
    assert queued[("morningpost_queue_depth", ())] == 6

    asyncio.run(build_worker(ctx).run_until_idle())
    after = scrape(client, editor)

    def delta(name: str, *labels: str) -> float:
        key = (name, tuple(labels))
        return after.get(key, 0.0) - before.get(key, 0.0)

    # The ledger, read at scrape time: every status present, zeros included.
    ledger = {
        s.value: after[("morningpost_deliveries", (f"status={s.value}",))] for s in DeliveryStatus
    }
    assert ledger == {
        "pending": 0, "sending": 0, "sent": 5, "retry": 0,
        "failed": 1, "unknown": 0, "cancelled": 0,
    }  # fmt: skip
    assert after[("morningpost_queue_depth", ())] == 0
    assert after[("morningpost_issues", ("status=sent",))] == 1
    assert after[("morningpost_subscribers", ("status=bounced",))] == 1
    assert after[("morningpost_database_up", ())] == 1
    # Per-process counters: 4 + the retried one accepted, one 4xx (mailbox), one 5xx.
    assert delta("morningpost_smtp_results_total", "class=2xx") == 5
    assert delta("morningpost_smtp_results_total", "class=4xx") == 1
    assert delta("morningpost_smtp_results_total", "class=5xx") == 1
    assert delta("morningpost_smtp_temporary_failures_total", "reason=mailbox") == 1
    assert delta("morningpost_smtp_transaction_seconds_count") == 7
    assert delta("morningpost_claim_seconds_count") >= 2
    assert delta("morningpost_claimed_deliveries_total") == 7
    # Every row went out after a commit handed it over (waits at the 354 depend on timing).
    assert delta("morningpost_handover_commit_seconds_count") >= 1
    assert ("morningpost_handover_wait_seconds_count", ()) in after


def test_heartbeat_of_the_worker_process(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    first = scrape(client, editor)
    assert first[("morningpost_workers_alive", ())] == 0
    assert ("morningpost_worker_heartbeat_age_seconds", ()) not in first

    async def run_until_it_beats() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_webhook_sender(ctx, stop))
        try:
            for _ in range(200):
                with session_scope(ctx.sessions) as s:
                    if s.scalar(select(func.count()).select_from(Heartbeat)):
                        return
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task

    asyncio.run(run_until_it_beats())
    later = scrape(client, editor)
    assert later[("morningpost_workers_alive", ())] == 1
    assert 0 <= later[("morningpost_worker_heartbeat_age_seconds", ())] < 3600


def test_sign_ups_and_confirmations_are_counted(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    before = scrape(client, editor)
    resp = client.post(
        "/subscribers", json={"email": "new@example.org", "status": "pending"}, headers=editor
    )
    assert resp.status_code == 201, resp.text
    sub_id = resp.json()["id"]
    token = ctx.tokens.confirm_token(sub_id, "new@example.org")
    assert client.post(f"/confirm/{token}").status_code == 200
    after = scrape(client, editor)
    assert after[("morningpost_signups_total", ())] - before[("morningpost_signups_total", ())] == 1
    assert (
        after[("morningpost_confirmations_total", ())]
        - before[("morningpost_confirmations_total", ())]
        == 1
    )


def test_smtp_replies_are_classified_into_a_few_bounded_labels() -> None:
    assert classify("sent", "250 2.0.0 OK") == ("2xx", None)
    assert classify("sent", "250 captured as x.eml") == ("2xx", None)
    assert classify("retry", "421 4.7.0 Too many connections") == ("4xx", "rate_limited")
    assert classify("retry", "451 4.7.1 Greylisted, try again") == ("4xx", "greylisted")
    assert classify("retry", "452 4.2.2 Mailbox full") == ("4xx", "mailbox")
    assert classify("retry", "450 4.1.8 Sender domain unknown") == ("4xx", "other")
    assert classify("retry", "connect: [Errno 111] Connection refused") == ("4xx", "connection")
    assert classify("retry", "connect: 421 4.3.2 shutting down") == ("4xx", "rate_limited")
    assert classify("failed", "550 5.1.1 No such user") == ("5xx", None)
    assert classify("unknown", "timed out waiting for the reply") == ("unknown", None)


def test_a_separate_worker_serves_its_own_counters(
    ctx: Context, smtp_server: SMTPTestServer, tmp_path: Path
) -> None:
    add_subscribers(ctx, [f"reader{i}@example.org" for i in range(3)])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    port = free_port()
    proc = start_worker(
        ctx.settings,
        tmp_path,
        MORNINGPOST_WORKER_METRICS_PORT=str(port),
        MORNINGPOST_METRICS_TOKEN="worker-scrape-token",
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        sent = 0.0
        # A liveness bound, not a timing assertion: a worker process starting on a loaded
        # 2-core machine took over 20 s to import, listen and send (CI, 2026-12-07).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for the worker to listen and to send all three
            try:
                request = urllib.request.Request(
                    url, headers={"Authorization": "Bearer worker-scrape-token"}
                )
                with urllib.request.urlopen(request, timeout=5) as resp:
                    text = resp.read().decode()
            except OSError:
                time.sleep(0.05)
                continue
            families = {f.name: f for f in text_string_to_metric_families(text)}
            results = families["morningpost_smtp_results"].samples
            sent = next(s.value for s in results if s.labels == {"class": "2xx"})
            if sent == 3:
                break
            time.sleep(0.05)
        assert sent == 3
        assert families["morningpost_deliveries"].samples  # the database gauges too
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert refused.value.code == 401
        refused.value.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
