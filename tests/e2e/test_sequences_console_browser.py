"""The console's Sequences page in headless Chromium: screenshots of its timeline and numbers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.automations.sequences import service
from app.automations.sequences.scheduler import tick
from app.context import Context
from app.db import session_scope
from app.models import utcnow
from tests.browser_support import ARGS, CHROMIUM
from tests.console_support import EMAIL, PASSWORD, add_account
from tests.helpers import deliver_in_thread
from tests.sequence_support import confirmed, drafts
from tests.smtp_server import SMTPTestServer

SHOTS = Path("/work/shots/sequences")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_sequences_page_screenshots(live: tuple[str, Context], smtp_server: SMTPTestServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, ctx = live
    add_account(ctx)
    ids = drafts(
        ctx,
        "Welcome to The AI Morning Post",
        "Three stories our readers loved",
        "How we pick the news",
    )
    with session_scope(ctx.sessions) as session:
        steps: Any = [
            {"issue": ids[0], "after": "PT0S"},
            {"issue": ids[1], "after": "P3D", "at": "06:00"},
            {"issue": ids[2], "after": "P1W"},
        ]
        service.create_sequence(session, "Welcome series", "confirmed", steps, False)
        tagged = service.create_sequence(
            session, "Paid readers' onboarding", {"tag": "paid"}, steps[:2], False
        )
        tagged.status = "paused"
    confirmed(ctx, 7, utcnow(), timedelta(seconds=1))
    tick(ctx, utcnow() + timedelta(seconds=10))
    deliver_in_thread(ctx)
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
        page.get_by_role("link", name="Sequences").click()
        expect(page.get_by_role("heading", name="Welcome series")).to_be_visible()
        expect(page.locator(".timeline .step").first).to_contain_text("7 sent")
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            for width in (375, 1280):
                page.set_viewport_size({"width": width, "height": 900})
                page.screenshot(path=str(SHOTS / f"sequences-{width}-{scheme}.png"), full_page=True)
        browser.close()
    assert not errors
