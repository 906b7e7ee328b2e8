"""A stream's log line carries its commits' figures (what bench/throughput.py sums)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.config import load_settings
from app.sends.handover import HandOvers, _Item
from app.sends.store.rows import Claim


def test_commit_figures_say_how_many_rows_and_how_long(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    handovers = HandOvers(load_settings(smtp_connections=4))
    assert handovers.commit_figures() == "no commits"
    handovers.commits, handovers.commit_rows, handovers.commit_seconds = 2, 7, 0.013
    assert handovers.commit_figures() == "commits 2 (3.5 rows handed over, 6.5 ms each)"
    handovers.waits, handovers.wait_seconds = 4, 0.006
    assert handovers.commit_figures() == (
        "commits 2 (3.5 rows handed over, 6.5 ms each); "
        "content waited for its hand-over 4 times (1.5 ms each)"
    )


def _item(delivery_id: int) -> _Item:
    claim = Claim(delivery_id, 1, delivery_id, f"r{delivery_id}@example.org", 1, "<m@x>", "nonce")
    return _Item(0.0, delivery_id, claim)


async def test_a_connection_waiting_at_the_354_is_timed_once_its_row_is_handed_over(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    waits: list[float] = []
    handovers = HandOvers(load_settings(smtp_connections=4), observe_wait=waits.append)
    handovers.stop = asyncio.Event()
    handed, withheld, early = (handovers._want(_item(i)) for i in (1, 2, 3))
    early.decided.set_result(True)  # decided before its connection reached the 354: no wait
    assert await early.wait()
    at_354 = [asyncio.create_task(g.wait()) for g in (handed, withheld)]
    await asyncio.sleep(0)  # both connections now stand at their 354
    assert handovers.waiting == 2
    handovers._decide(1, True)
    handovers._withhold({2})
    assert await at_354[0] is True and await at_354[1] is False
    assert handovers.waiting == 0
    # Only the wait that ended in a hand-over is the database's: one, timed, and told.
    assert handovers.waits == 1 and len(waits) == 1
    assert 0 < waits[0] == handovers.wait_seconds < 60
