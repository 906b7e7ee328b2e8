"""The segment builder in headless Chromium: the count and sample follow the filter as it is
typed, and a filter that does not read shows its position."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.audience.tags import add_tags
from app.context import Context
from app.db import session_scope
from app.models import utcnow
from tests.console_support import EMAIL, PASSWORD, add_account
from tests.helpers import add_subscribers

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


def test_the_segment_builder_counts_as_the_editor_types(live: tuple[str, Context]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, ctx = live
    add_account(ctx)
    ids = add_subscribers(ctx, 14)
    with session_scope(ctx.sessions) as session:
        for sid in ids[:12]:
            add_tags(session, sid, ["vip"], utcnow())
        add_tags(session, ids[0], ["trial"], utcnow())
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 375, "height": 800})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/editor/login")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{url}/editor/segments")

        status = page.locator("[data-segment-status]")
        sample = page.locator("[data-segment-sample] li")
        page.get_by_label("Filter").press_sequentially("tag:vip", delay=20)
        expect(status).to_have_text("12 readers match now; the first 10:")
        expect(sample).to_have_count(10)
        expect(sample.first).to_have_text("reader0@example.org")

        page.get_by_label("Filter").press_sequentially(" and not tag:trial", delay=20)
        expect(status).to_have_text("11 readers match now; the first 10:")
        expect(sample.first).to_have_text("reader1@example.org")

        page.get_by_label("Filter").press_sequentially(" and (", delay=20)
        error = page.locator("[data-segment-error]")
        expect(error).to_be_visible()
        expect(error).to_contain_text("position 32")
        expect(page.get_by_label("Filter")).to_have_attribute("aria-invalid", "true")
        expect(sample).to_have_count(0)

        page.get_by_label("Filter").fill("tag:nobody")
        expect(status).to_have_text("0 readers match now.")
        expect(error).to_be_hidden()
        browser.close()
    assert errors == []
