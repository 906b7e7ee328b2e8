"""Editing a sequence's steps (reorder, insert, delete) never resends a step a reader already
had and never skips one they have not had: a reader's place is the steps they had, not a slot
number. A step an edit adds before a reader's place is passed over for that reader."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.automations.sequences.scheduler import tick
from app.context import Context
from app.db import session_scope
from app.models import Delivery, SequenceStep, utcnow
from tests.helpers import run_worker
from tests.sequence_support import confirmed, drafts
from tests.smtp_server import SMTPTestServer

DAY = timedelta(days=1)


def deliver_due(ctx: Context, at: datetime) -> None:
    """Queue and send every step due at `at`, one step per reader per round, as the worker does."""
    while tick(ctx, at):
        run_worker(ctx)


def subjects(smtp_server: SMTPTestServer) -> dict[str, list[str]]:
    """Return each recipient's subjects in the order they arrived."""
    got: dict[str, list[str]] = defaultdict(list)
    for received in list(smtp_server.handler.received):
        got[received.rcpt_tos[0]].append(str(received.message()["Subject"]))
    return got


def patch_steps(
    client: TestClient, editor: dict[str, str], sequence_id: int, steps: list[dict[str, Any]]
) -> None:
    """Replace a sequence's steps through the API."""
    resp = client.patch(f"/sequences/{sequence_id}", json={"steps": steps}, headers=editor)
    assert resp.status_code == 200, resp.text


def start(client: TestClient, editor: dict[str, str], steps: list[dict[str, Any]]) -> int:
    """Create a backfilled sequence; return its id."""
    body = {"name": "Drip", "trigger": "confirmed", "backfill": True, "steps": steps}
    resp = client.post("/sequences", json=body, headers=editor)
    assert resp.status_code == 201, resp.text
    sequence_id: int = resp.json()["id"]
    return sequence_id


def one_row_per_step_and_reader(ctx: Context, sequence_id: int) -> None:
    """Check that the ledger holds no reader twice on one step (over every version of it)."""
    with session_scope(ctx.sessions) as session:
        rows = session.execute(
            select(SequenceStep.template_issue_id, Delivery.subscriber_id)
            .join(Delivery, Delivery.issue_id == SequenceStep.carrier_issue_id)
            .where(SequenceStep.sequence_id == sequence_id)
        ).all()
    assert len(rows) == len(set(rows)), rows


def test_reordered_steps_reach_a_reader_past_step_1_once_each_in_the_new_order(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    a, b, c = drafts(ctx, "A", "B", "C")
    now = utcnow()
    seq = start(
        client,
        editor,
        [{"issue": a, "after": "PT0S"}, {"issue": b, "after": "P1D"}, {"issue": c, "after": "P2D"}],
    )
    confirmed(ctx, 1, now, timedelta(0))
    deliver_due(ctx, now + timedelta(seconds=5))
    assert subjects(smtp_server) == {"seq0@example.org": ["A"]}

    # The repro: A is now in the reader's next slot. They go on with C, then B; never A again.
    patch_steps(
        client,
        editor,
        seq,
        [{"issue": c, "after": "P1D"}, {"issue": a, "after": "P2D"}, {"issue": b, "after": "P3D"}],
    )
    deliver_due(ctx, now + DAY + timedelta(seconds=5))
    deliver_due(ctx, now + 9 * DAY)

    assert subjects(smtp_server) == {"seq0@example.org": ["A", "C", "B"]}
    one_row_per_step_and_reader(ctx, seq)
    stats = client.get(f"/sequences/{seq}/stats", headers=editor).json()
    assert [(s["issue"], s["sent"]) for s in stats["steps"]] == [(c, 1), (a, 1), (b, 1)]
    assert stats["active_readers"] == 0


def test_a_step_inserted_in_the_middle_reaches_readers_before_it_and_is_skipped_by_readers_past_it(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    a, b, c, x = drafts(ctx, "A", "B", "C", "X")
    now = utcnow()
    seq = start(
        client,
        editor,
        [{"issue": a, "after": "PT0S"}, {"issue": b, "after": "P1D"}, {"issue": c, "after": "P2D"}],
    )
    # seq0 matched a day ago (has had A and B); seq1 now (has had A only).
    confirmed(ctx, 2, now - DAY, DAY)
    deliver_due(ctx, now + timedelta(seconds=5))
    assert subjects(smtp_server) == {"seq0@example.org": ["A", "B"], "seq1@example.org": ["A"]}

    # X goes in as step 2. seq1 has had one step: X is ahead of them and reaches them. seq0
    # has had two: X's place is behind them, so they pass over it (as ConvertKit and Mailchimp
    # do) and go on with C, the step they have not had, instead of getting B a second time
    # (B moved into their next slot).
    patch_steps(
        client,
        editor,
        seq,
        [
            {"issue": a, "after": "PT0S"},
            {"issue": x, "after": "PT12H"},
            {"issue": b, "after": "P1D"},
            {"issue": c, "after": "P2D"},
        ],
    )
    deliver_due(ctx, now + DAY + timedelta(seconds=5))
    deliver_due(ctx, now + 9 * DAY)

    got = subjects(smtp_server)
    assert got == {"seq0@example.org": ["A", "B", "C"], "seq1@example.org": ["A", "X", "B", "C"]}
    one_row_per_step_and_reader(ctx, seq)


def test_deleting_a_middle_step_skips_nothing_for_readers_past_it(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    a, b, c, d = drafts(ctx, "A", "B", "C", "D")
    now = utcnow()
    seq = start(
        client,
        editor,
        [
            {"issue": a, "after": "PT0S"},
            {"issue": b, "after": "P1D"},
            {"issue": c, "after": "P2D"},
            {"issue": d, "after": "P3D"},
        ],
    )
    # seq0 has had A and B; seq1 has had A only.
    confirmed(ctx, 2, now - DAY, DAY)
    deliver_due(ctx, now + timedelta(seconds=5))
    assert subjects(smtp_server) == {"seq0@example.org": ["A", "B"], "seq1@example.org": ["A"]}

    # B goes: seq0 (past it) still gets C then D; seq1 (before it) never gets B.
    patch_steps(
        client,
        editor,
        seq,
        [{"issue": a, "after": "PT0S"}, {"issue": c, "after": "P2D"}, {"issue": d, "after": "P3D"}],
    )
    deliver_due(ctx, now + DAY + timedelta(seconds=5))
    deliver_due(ctx, now + 9 * DAY)

    got = subjects(smtp_server)
    assert got == {"seq0@example.org": ["A", "B", "C", "D"], "seq1@example.org": ["A", "C", "D"]}
    one_row_per_step_and_reader(ctx, seq)
    stats = client.get(f"/sequences/{seq}/stats", headers=editor).json()
    assert [(s["issue"], s["sent"]) for s in stats["steps"]] == [(a, 2), (c, 2), (d, 2)]
    assert stats["active_readers"] == 0
