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


@pytest.fixture(autouse=True, scope="session")
def _patient_expectations() -> None:
    """Give Playwright's expect() 20 s, not 5: a liveness bound, not a timing assertion.

    On a loaded 2-core machine (both databases' suites side by side) a save's round trip
    and the page's re-render once took longer than the default 5 s (CI, 2026-12-07).
    """
    try:
        from playwright.sync_api import expect
    except ImportError:  # the browser tests skip themselves without Playwright
        return
    expect.set_options(timeout=20_000)
