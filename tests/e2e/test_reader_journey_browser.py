"""A reader's journey in headless Chromium over real HTTP: sign up, confirm, leave, archive."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.context import Context
from app.db import session_scope
from app.editors import create_editor_token
from tests.browser_support import ARGS, CHROMIUM
from tests.helpers import deliver_in_thread, new_issue
from tests.smtp_server import SMTPTestServer

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = (375, 1280)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


def _shoot(page: Any, name: str) -> None:
    """Save the current page at each width."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)


def _html_part(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def _link(msg: EmailMessage, pattern: str) -> str:
    text = str(msg.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    found = re.search(pattern, text)
    assert found, text
    return found.group(0)


def test_reader_journey(live: tuple[str, Context], smtp_server: SMTPTestServer) -> None:
    from playwright.sync_api import sync_playwright

    url, ctx = live
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page()
        page.on(
            "console",
            lambda m: errors.append(f"{page.url} {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))

        # Sign up through the form; the honeypot is invisible to the reader.
        page.goto(f"{url}/subscribe")
        _shoot(page, "01-subscribe")
        box = page.locator("#website").bounding_box()
        assert box is not None and box["x"] + box["width"] < 0  # off-screen, never seen
        page.get_by_label("Email address").fill("reader@example.org")
        page.get_by_label("Name").fill("Rea Der")
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_load_state()
        assert "Check your inbox" in page.content()
        _shoot(page, "02-check-inbox")

        # A malformed address comes back with the message and what was typed.
        page.goto(f"{url}/subscribe")
        page.get_by_label("Email address").fill("not an address")
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_load_state()
        assert page.get_by_role("alert").is_visible()
        assert page.get_by_label("Email address").input_value() == "not an address"
        _shoot(page, "03-subscribe-error")

        # The worker sends the confirmation through the real SMTP server.
        deliver_in_thread(ctx)
        [confirmation] = smtp_server.handler.wait_for(1)
        confirm_url = _link(confirmation.message(), re.escape(url) + r"/confirm/[^\s>\"]+")
        page.goto(confirm_url)
        _shoot(page, "04-confirm")
        page.get_by_role("button", name="Confirm").click()
        page.wait_for_load_state()
        assert "subscribed" in page.locator("h1").inner_text()
        _shoot(page, "05-confirmed")

        # An issue goes out; its List-Unsubscribe link leads to the unsubscribe page.
        with session_scope(ctx.sessions) as session:
            token = create_editor_token(session, "browser")
        editor = {"Authorization": f"Bearer {token}"}
        with httpx2.Client(base_url=url) as api:
            issue = new_issue(api, editor, slug="first-light", subject="First light")
            sent = api.post(f"/issues/{issue['id']}/send", headers=editor)
            assert sent.status_code == 202, sent.text
        deliver_in_thread(ctx)
        # Confirmation, welcome (after confirming), then the issue.
        received = smtp_server.handler.wait_for(3)
        [mail] = [r.message() for r in received if r.message()["Subject"] == "First light"]
        issue_file = SHOTS / "issue-email.html"
        SHOTS.mkdir(parents=True, exist_ok=True)
        issue_file.write_text(_html_part(mail))
        page.goto(issue_file.as_uri())
        _shoot(page, "06-issue-email")

        found = re.search(r"<(https?://[^>]+/unsubscribe/[^>]+)>", str(mail["List-Unsubscribe"]))
        assert found, mail["List-Unsubscribe"]
        page.goto(found.group(1))
        _shoot(page, "07-unsubscribe")
        page.get_by_role("button", name="Unsubscribe").click()
        page.wait_for_load_state()
        assert "unsubscribed" in page.locator("h1").inner_text()
        _shoot(page, "08-unsubscribed")

        # The archive lists the issue and shows its web version.
        page.goto(f"{url}/archive")
        _shoot(page, "09-archive")
        page.get_by_role("link", name="First light").click()
        page.wait_for_load_state()
        assert "Hello readers" in page.content()
        _shoot(page, "10-archive-issue")

        page.goto(f"{url}/archive/no-such-issue")
        _shoot(page, "11-not-found")
        browser.close()

    # The only console errors are the statuses of the two pages that are errors on purpose.
    failed = "Failed to load resource: the server responded with a status of"
    expected = (f"{url}/subscribe {failed} 422", f"{url}/archive/no-such-issue {failed} 404")
    assert [e for e in errors if not e.startswith(expected)] == [], errors
    assert len(errors) <= 2, errors
