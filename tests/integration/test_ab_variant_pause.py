"""A/B variant paused by the worker (errors, a bounce burst, a relay alert): the pause sticks,
the whole test shows it with the reason, and the editor's resume of the test sends the rest."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from app.automations.ab_pauses import HELD_REASON
from app.automations.scheduler import ab_tick
from app.context import Context
from app.db import session_scope
from app.models import AbTest, Delivery, DeliveryStatus, Issue, IssueStatus, Suppression, utcnow
from app.sends.store.sends import RELAY_BURST_PAUSE, flip_status
from app.sends.watch import Burst
from app.suppressions.service import bounce_detail, suppress_bounced
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer

READERS = 20
AB = {"subjects": ["Alpha", "Bravo"], "sample_percent": 50, "decide_after": "PT1H"}
ERRORS = (
    "paused automatically: 60% of the last 20 deliveries failed; last reply: 451 4.3.0 try later"
)


def start_test(client: TestClient, editor: dict[str, str], ctx: Context) -> tuple[int, list[int]]:
    """Start an A/B send of a new issue; return its id and its variants' carriers."""
    issue = new_issue(client, editor)
    resp = client.post(f"/issues/{issue['id']}/send", json={"ab": AB}, headers=editor)
    assert resp.status_code == 202, resp.text
    with session_scope(ctx.sessions) as session:
        return issue["id"], list(session.get_one(AbTest, issue["id"]).carriers)


def worker_pauses(ctx: Context, carrier_id: int, reason: str) -> None:
    """Pause a variant as the worker's stream does (its ledger's pause: this compare-and-set)."""
    with session_scope(ctx.sessions) as session:
        flip_status(session, carrier_id, IssueStatus.sending, IssueStatus.paused, reason)


def carrier_states(ctx: Context, carriers: list[int]) -> list[tuple[str, str | None]]:
    """Return (status, pause_reason) of each carrier, in the order of the subjects."""
    with session_scope(ctx.sessions) as session:
        rows = {
            i: (str(status), reason)
            for i, status, reason in session.execute(
                select(Issue.id, Issue.status, Issue.pause_reason).where(Issue.id.in_(carriers))
            )
        }
    return [rows[i] for i in carriers]


def stats(client: TestClient, editor: dict[str, str], issue_id: int) -> dict[str, Any]:
    """Return the issue's stats as the console reads them."""
    resp = client.get(f"/issues/{issue_id}/stats", headers=editor)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def received(smtp_server: SMTPTestServer) -> Counter[str]:
    """Count the messages received per recipient."""
    return Counter(r.rcpt_tos[0] for r in list(smtp_server.handler.received))


def test_a_variant_the_worker_paused_stays_paused_and_pauses_its_test(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, READERS)
    issue_id, carriers = start_test(client, editor, ctx)
    worker_pauses(ctx, carriers[1], ERRORS)
    for _ in range(3):  # the automations loop goes round every second
        assert ab_tick(ctx) == []
    # The variant keeps its pause and its reason; its sibling waits with the test.
    assert carrier_states(ctx, carriers) == [("paused", HELD_REASON), ("paused", ERRORS)]
    out = stats(client, editor, issue_id)
    assert out["status"] == "paused", out
    assert out["pause_reason"] == f"variant 'Bravo' {ERRORS}", out
    run_worker(ctx)
    assert received(smtp_server) == Counter()  # nothing goes out while the test is paused


def test_resuming_the_test_resumes_its_variants_and_sends_the_rest_once(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, READERS)
    issue_id, carriers = start_test(client, editor, ctx)
    worker_pauses(ctx, carriers[0], ERRORS)
    assert ab_tick(ctx) == []
    # The decision falls due while the test is paused: it waits (the sample is not out).
    assert ab_tick(ctx, utcnow() + timedelta(hours=2)) == []
    run_worker(ctx)
    assert received(smtp_server) == Counter()
    assert stats(client, editor, issue_id)["status"] == "paused"

    resp = client.post(f"/issues/{issue_id}/resume", headers=editor)
    assert resp.status_code == 200, resp.text
    assert ab_tick(ctx) == []
    assert carrier_states(ctx, carriers) == [("sending", None), ("sending", None)]
    run_worker(ctx)
    sample = received(smtp_server)
    assert len(sample) == READERS // 2 and set(sample.values()) == {1}, sample
    assert ab_tick(ctx, utcnow() + timedelta(hours=3)) == [issue_id]
    run_worker(ctx)
    assert ab_tick(ctx, utcnow() + timedelta(hours=4)) == []  # never decided twice
    everyone = received(smtp_server)
    assert len(everyone) == READERS and set(everyone.values()) == {1}, everyone
    out = stats(client, editor, issue_id)
    assert out["status"] == "sent" and out["pause_reason"] is None, out
    assert carrier_states(ctx, carriers) == [("sent", None), ("sent", None)]


def test_a_pause_moves_the_decision_on_by_its_length(
    ctx: Context, client: TestClient, editor: dict[str, str]
) -> None:
    """The sample's readers had an hour to click (decide_after PT1H), less the pause."""
    add_subscribers(ctx, READERS)
    issue_id, _ = start_test(client, editor, ctx)
    with session_scope(ctx.sessions) as session:
        decide_at = session.get_one(AbTest, issue_id).decide_at
    start = utcnow()
    assert client.post(f"/issues/{issue_id}/pause", headers=editor).status_code == 200
    assert ab_tick(ctx, start) == []
    assert ab_tick(ctx, start + timedelta(hours=5)) == []  # paused: never decided
    assert client.post(f"/issues/{issue_id}/resume", headers=editor).status_code == 200
    resumed = start + timedelta(hours=3)  # the resume is seen three hours after the pause
    assert ab_tick(ctx, resumed) == []
    with session_scope(ctx.sessions) as session:
        moved = session.get_one(AbTest, issue_id)
        assert moved.paused_at is None
        assert moved.decide_at == decide_at + timedelta(hours=3)
    assert ab_tick(ctx, moved.decide_at - timedelta(seconds=1)) == []
    assert ab_tick(ctx, moved.decide_at) == [issue_id]
    # An editor may still decide a paused test at once (POST /issues/{id}/ab/decide).


def test_resuming_after_a_variants_relay_burst_undoes_the_burst_on_that_variant(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, READERS)
    issue_id, carriers = start_test(client, editor, ctx)
    # A straggler of the burst, recorded as a hard bounce (and suppressed) after the pause.
    with session_scope(ctx.sessions) as session:
        late = session.scalars(
            select(Delivery.subscriber_id).where(Delivery.issue_id == carriers[0])
        ).first()
        assert late is not None
        session.execute(
            update(Delivery)
            .where(Delivery.issue_id == carriers[0], Delivery.subscriber_id == late)
            .values(status=DeliveryStatus.failed, last_reply="550 5.1.1 <x> rejected")
        )
    burst = Burst(count=12, domains=1, reply="550 5.1.1 <x> rejected").reason()
    worker_pauses(ctx, carriers[0], burst)
    with session_scope(ctx.sessions) as session:
        suppress_bounced(session, [late], utcnow(), detail=bounce_detail(carriers[0]))
    ab_tick(ctx)
    out = stats(client, editor, issue_id)
    assert out["status"] == "paused" and RELAY_BURST_PAUSE in out["pause_reason"], out
    # Not the burst's own words first: resuming the test must not lift its own bounces.
    assert not out["pause_reason"].startswith(RELAY_BURST_PAUSE), out

    assert client.post(f"/issues/{issue_id}/resume", headers=editor).status_code == 200
    ab_tick(ctx)
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    run_worker(ctx)
    sample = received(smtp_server)
    assert len(sample) == READERS // 2 and set(sample.values()) == {1}, sample
