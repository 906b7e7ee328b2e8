"""A stream's log line carries its commits' figures (what bench/throughput.py sums)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import load_settings
from app.sends.handover import HandOvers


def test_commit_figures_say_how_many_rows_and_how_long(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    handovers = HandOvers(load_settings(smtp_connections=4))
    assert handovers.commit_figures() == "no commits"
    handovers.commits, handovers.commit_rows, handovers.commit_seconds = 2, 7, 0.013
    assert handovers.commit_figures() == "commits 2 (3.5 rows handed over, 6.5 ms each)"
