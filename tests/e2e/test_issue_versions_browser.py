"""Two tabs edit one issue in headless Chromium: the stale save shows both texts, loses neither."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.context import Context
from app.db import session_scope
from app.models import Issue
from tests.browser_support import ARGS, CHROMIUM
from tests.console_support import EMAIL, PASSWORD, add_account

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "versions"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

MARKDOWN = """---
subject: {subject}
preheader: Today in AI
---
## Small models are back {{lead}}
{body}

## Subscribe to The AI Morning Post {{subscribe}}
Get daily AI insights delivered every morning.
"""


def _shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for width in (375, 1280):
            page.set_viewport_size({"width": width, "height": 900})
            suffix = "" if scheme == "light" else "-dark"
            page.screenshot(path=str(SHOTS / f"{name}-{width}{suffix}.png"), full_page=True)
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_two_tabs_one_issue(live: tuple[str, Context]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, ctx = live
    add_account(ctx)
    with session_scope(ctx.sessions) as session:
        issue = Issue(
            slug="two-tabs",
            subject="Base",
            preheader="Today in AI",
            blocks=[{"type": "markdown", "body": "The first draft."}],
        )
        session.add(issue)
        session.flush()
        issue_id = issue.id
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        a = context.new_page()
        a.goto(f"{url}/editor/login")
        a.get_by_label("Email").fill(EMAIL)
        a.get_by_label("Password").fill(PASSWORD)
        a.get_by_role("button", name="Sign in").click()
        expect(a.get_by_role("heading", name="Dashboard")).to_be_visible()
        b = context.new_page()  # the same editor's second tab, or a colleague's
        for page in (a, b):
            page.goto(f"{url}/editor/issues/{issue_id}/edit")
        a.get_by_label("Issue in Markdown").fill(
            MARKDOWN.format(subject="A's correction", body="A fixed a typo.")
        )
        a.get_by_role("button", name="Save changes").click()
        expect(a.get_by_role("status")).to_contain_text("Your changes are saved.")

        mine = MARKDOWN.format(subject="B's rewrite", body="B rewrote the lead.")
        b.get_by_label("Issue in Markdown").fill(mine)
        b.get_by_role("button", name="Save changes").click()
        expect(b.get_by_role("alert")).to_contain_text("Someone else saved this issue")
        expect(b.locator("#theirs")).to_contain_text("A fixed a typo.")
        assert b.get_by_label("Issue in Markdown").input_value() == mine
        _shoot(b, "edit-conflict")
        # Saving again is the editor's deliberate choice, and now it goes through.
        b.get_by_role("button", name="Save changes").click()
        expect(b.get_by_role("status")).to_contain_text("Your changes are saved.")
        browser.close()
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Issue, issue_id).subject == "B's rewrite"
