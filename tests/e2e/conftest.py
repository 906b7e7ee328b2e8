"""End-to-end tests run on one database only (SQLite): they test pages and processes, not SQL.

On PostgreSQL (MORNINGPOST_TEST_DATABASE_URL set) every test under tests/e2e/ is skipped with
that reason; .ci/run does not even collect them there (--ignore=tests/e2e).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PG_URL

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests of this folder when the run is on PostgreSQL."""
    if not PG_URL:
        return
    skip = pytest.mark.skip(reason="e2e tests run on SQLite only (they test pages, not SQL)")
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(skip)
