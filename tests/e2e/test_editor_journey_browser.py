"""The editor's journey in headless Chromium: sign in, write the sample issue in Markdown,
preview it at both widths, test it, schedule it, send it, watch it finish, find a reader."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from app.context import Context
from app.models import utcnow
from tests.browser_support import ARGS, CHROMIUM, shoot
from tests.console_support import EMAIL, PASSWORD, add_account
from tests.helpers import add_subscribers, deliver_in_thread
from tests.smtp_server import SMTPTestServer

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "console"
SAMPLE = ROOT / "examples" / "ai-morning-post.md"
READERS = 6

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


def test_editor_journey(live: tuple[str, Context], smtp_server: SMTPTestServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, ctx = live
    add_account(ctx)
    add_subscribers(ctx, READERS)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on(
            "console",
            lambda m: errors.append(f"{page.url} {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))

        # Signed out, the console sends the editor to the sign-in page.
        page.goto(f"{url}/editor/")
        assert page.url == f"{url}/editor/login"
        shoot(page, "01-login")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill("not my password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("do not match")
        shoot(page, "02-login-error")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        shoot(page, "03-dashboard-empty")

        # Write the sample issue in Markdown; the live preview follows the text.
        page.get_by_role("link", name="Issues", exact=True).click()
        page.get_by_role("link", name="New issue").click()
        markdown = SAMPLE.read_text()
        page.get_by_label("Issue in Markdown").fill(markdown)
        frame = page.frame_locator("#preview-frame")
        # Text only the sample has: the frame shows the new text, not the starter template.
        expect(frame.get_by_text("Weekend Reading").first).to_be_visible(timeout=15_000)
        shoot(page, "04-issue-new-markdown")
        page.get_by_role("button", name="Save draft").click()
        # Saved by the button, or into the draft the autosave made while the preview loaded.
        expect(page.get_by_role("status")).to_contain_text(
            re.compile("(draft|changes) (is|are) saved")
        )
        issue_url = page.url.split("?")[0]
        issue_id = int(issue_url.rsplit("/", 1)[1])
        shoot(page, "05-issue")

        # Preview at phone and desktop width side by side.
        page.get_by_role("link", name="Preview at both widths").click()
        phone = page.frame_locator("iframe[width='375']")
        expect(phone.get_by_text("By the Numbers").first).to_be_visible()
        expect(
            page.frame_locator("iframe[width='620']").get_by_text("By the Numbers").first
        ).to_be_visible()
        shoot(page, "06-issue-preview")

        # The Markdown and block editors of a saved issue.
        page.goto(f"{issue_url}/edit")
        expect(page.get_by_label("Issue in Markdown")).to_contain_text("{stats}")
        shoot(page, "07-issue-edit-markdown")
        page.goto(f"{issue_url}/blocks")
        expect(page.get_by_role("heading", name="Edit block by block")).to_be_visible()
        shoot(page, "08-issue-edit-blocks")

        # A test copy to myself, caught by the test SMTP server.
        page.goto(issue_url)
        page.get_by_role("button", name="Send test copy").click()
        expect(page.get_by_role("status")).to_contain_text("A test copy is on its way.")
        deliver_in_thread(ctx)
        [test_copy] = smtp_server.handler.wait_for(1)
        message = test_copy.message()
        assert str(message["Subject"]).startswith("[TEST]")
        assert message["To"] == EMAIL

        # Schedule it for tomorrow; the dashboard shows it.
        tomorrow = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT06:00")
        page.get_by_label("Schedule for (UTC)").fill(tomorrow)
        expect(page.locator("#send_at_hint")).to_contain_text("where you are")
        page.get_by_role("button", name="Schedule").click()
        expect(page.get_by_role("status")).to_contain_text("The issue is scheduled.")
        page.get_by_role("link", name="Dashboard").click()
        expect(page.get_by_text(tomorrow.replace("T", " ") + " UTC")).to_be_visible()
        shoot(page, "09-dashboard-scheduled")

        # Send now, after a confirmation that states the number of recipients.
        page.goto(issue_url)
        page.get_by_role("button", name="Send now…").click()
        expect(page.get_by_text(f"{READERS} readers").first).to_be_visible()
        shoot(page, "10-issue-send-confirm")
        page.get_by_role("button", name=f"Send to {READERS} readers").click()
        expect(page.get_by_role("status")).to_contain_text("The send has started.")
        assert page.url.startswith(f"{issue_url}/results")
        shoot(page, "11-results-sending")
        page.get_by_role("link", name="Dashboard").click()
        expect(page.locator(f"[data-progress='{issue_id}'] progress")).to_be_visible()
        shoot(page, "12-dashboard-sending")
        page.goto(issue_url)
        expect(page.get_by_role("button", name="Pause")).to_be_visible()
        shoot(page, "13-issue-sending")
        page.get_by_role("link", name="Cancel the send…").click()
        expect(page.get_by_role("button", name="Cancel the send")).to_be_visible()
        shoot(page, "13b-issue-cancel-confirm")
        page.get_by_role("link", name="Keep it").click()
        page.goto(f"{issue_url}/results")

        # The worker delivers; the results page notices by itself and shows the finished send.
        deliver_in_thread(ctx)
        smtp_server.handler.wait_for(1 + READERS)
        expect(page.locator(".meta .badge-sent")).to_be_visible(timeout=30_000)
        expect(page.locator(".tile.good .tile-n")).to_have_text(str(READERS))
        shoot(page, "14-results-sent")

        # Find one reader's delivery and its last SMTP reply.
        page.get_by_label("Search by email").fill("reader3@")
        page.get_by_role("button", name="Filter").click()
        row = page.locator("table.recipients tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("reader3@example.org")
        expect(row).to_contain_text("sent")
        expect(row.locator("td.reply")).to_contain_text("250")
        shoot(page, "15-results-search")

        page.get_by_role("link", name="Dashboard").click()
        expect(page.get_by_role("heading", name="Last sends")).to_be_visible()
        shoot(page, "16-dashboard-after-send")
        page.get_by_role("link", name="Issues", exact=True).click()
        shoot(page, "17-issues")

        # Subscribers: list, one reader, add, import with a rejected row, erase confirmation.
        page.get_by_role("link", name="Subscribers", exact=True).click()
        expect(page.get_by_text("reader0@example.org")).to_be_visible()
        shoot(page, "18-subscribers")
        page.get_by_role("link", name="reader0@example.org").click()
        shoot(page, "19-subscriber-edit")
        page.get_by_role("link", name="Erase…").click()
        shoot(page, "20-subscriber-erase")
        page.goto(f"{url}/editor/subscribers/new")
        page.get_by_label("Email").fill("new.reader@example.org")
        page.get_by_label("Name").fill("New Reader")
        shoot(page, "21-subscriber-new")
        page.get_by_role("button", name="Add subscriber").click()
        expect(page.get_by_role("status")).to_contain_text("The subscriber is added.")
        page.goto(f"{url}/editor/subscribers/import")
        csv_file = SHOTS / "import-sample.csv"
        csv_file.write_text("email,name\nimported@example.org,Im Ported\nnot-an-address,Broken\n")
        page.get_by_label("CSV file").set_input_files(str(csv_file))
        page.get_by_role("button", name="Import").click()
        expect(page.get_by_text("Rejected rows")).to_be_visible()
        shoot(page, "22-subscribers-import")

        # Suppressions and settings.
        page.get_by_role("link", name="Suppressions").click()
        page.get_by_label("Email").fill("complainer@example.org")
        page.get_by_label("Reason", exact=True).select_option("complaint")
        page.get_by_role("button", name="Suppress").click()
        expect(page.get_by_role("status")).to_contain_text("on the suppression list")
        shoot(page, "23-suppressions")
        page.get_by_role("link", name="Settings").click()
        expect(page.get_by_text("DNS records to publish")).to_be_visible()
        shoot(page, "24-settings")

        # Sign out: the console is closed again.
        page.get_by_role("button", name="Sign out").click()
        assert page.url == f"{url}/editor/login"
        page.goto(f"{url}/editor/issues/{issue_id}/results")
        assert page.url == f"{url}/editor/login?next=/editor/issues/{issue_id}/results"
        browser.close()

    # The only console error is the status of the wrong password (401), on purpose.
    failed = "Failed to load resource: the server responded with a status of 401"
    assert [e for e in errors if failed not in e] == [], errors
    assert re.fullmatch(r"\d+", str(issue_id))
