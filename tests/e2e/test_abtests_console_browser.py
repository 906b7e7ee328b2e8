"""The console's A/B pages in headless Chromium: screenshots of the send and results pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.context import Context
from app.db import session_scope
from app.issues.schemas import IssueIn
from app.issues.service import create_issue
from tests.browser_support import ARGS, CHROMIUM
from tests.console_support import EMAIL, PASSWORD, add_account
from tests.helpers import SIMPLE_BLOCKS, add_subscribers, deliver_in_thread
from tests.smtp_server import SMTPTestServer

SHOTS = Path("/work/shots/sequences")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_ab_pages_screenshots(live: tuple[str, Context], smtp_server: SMTPTestServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, ctx = live
    add_account(ctx)
    add_subscribers(ctx, 30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/editor/login")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        with session_scope(ctx.sessions) as session:
            issue_id = create_issue(
                session,
                IssueIn(
                    subject="The Specialization Wave",
                    preheader="Small models, big gains",
                    blocks=SIMPLE_BLOCKS,
                ),
                ctx.renderer,
            ).id
        page.goto(f"{url}/editor/issues/{issue_id}/send")
        page.get_by_label("Subject B").fill("Why small models are winning")
        page.get_by_label("Subject C").fill("1.5B parameters, $50 a month")
        expect(page.locator('[data-ab-preview="2"]')).to_have_text("1.5B parameters, $50 a month")
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            for width in (375, 1280):
                page.set_viewport_size({"width": width, "height": 900})
                page.screenshot(path=str(SHOTS / f"ab-send-{width}-{scheme}.png"), full_page=True)
        page.emulate_media(color_scheme="light")
        page.get_by_role("button", name="Start the subject test").click()
        expect(page.get_by_role("heading", name="Subject test")).to_be_visible()
        deliver_in_thread(ctx)
        page.reload()
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            for width in (375, 1280):
                page.set_viewport_size({"width": width, "height": 900})
                page.screenshot(
                    path=str(SHOTS / f"ab-results-{width}-{scheme}.png"), full_page=True
                )
        browser.close()
    assert not errors
