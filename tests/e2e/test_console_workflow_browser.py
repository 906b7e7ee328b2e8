"""The editor's morning in headless Chromium (issue 22): nothing lost, nothing surprising.

Each test also saves screenshots (375 and 1280 px, light and dark) of the pages it changed.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.context import Context
from app.models import utcnow
from tests.browser_support import ARGS, CHROMIUM
from tests.console_support import EMAIL, PASSWORD, add_account
from tests.helpers import add_subscribers, deliver_in_thread, new_issue, run_worker
from tests.smtp_server import SMTPTestServer

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console-morning"
WIDTHS = (375, 1280)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

TEXT = """---
subject: Kept across a sign-out
preheader: Nothing typed is lost
---
## The lead {lead}
Every word of this survives.
"""


def shoot(page: Any, name: str) -> None:
    """Save the page at phone and desktop width, in the light and the dark scheme."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            suffix = "" if scheme == "light" else "-dark"
            page.screenshot(path=str(SHOTS / f"{name}-{width}{suffix}.png"), full_page=True)
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 1280, "height": 900})


def sign_in(page: Any, url: str) -> None:
    """Sign in through the form."""
    page.goto(f"{url}/editor/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/editor/")


def _browser(pw: Any) -> Any:
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


def test_sign_out_in_another_tab_keeps_the_text(live: tuple[str, Context]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, ctx = live
    add_account(ctx)
    with sync_playwright() as pw:
        browser = _browser(pw)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, url)
        page.goto(f"{url}/editor/issues/new")
        page.get_by_label("Issue in Markdown").fill(TEXT)
        # The draft is created by autosave: the page becomes its editor without a reload.
        expect(page.locator("#autosave-status")).to_contain_text("Saved at", timeout=15_000)
        page.wait_for_url(f"{url}/editor/issues/*/edit")
        edit_url = page.url
        shoot(page, "01-edit-autosaved")

        # Another tab signs out.
        other = context.new_page()
        other.goto(f"{url}/editor/")
        other.get_by_role("button", name="Sign out").click()
        other.wait_for_url(f"{url}/editor/login")
        other.close()

        # Typing on: the autosave is refused, the page says so and keeps the text.
        more = TEXT + "\nAnd these words came after the other tab signed out.\n"
        page.get_by_label("Issue in Markdown").fill(more)
        expect(page.locator("#session-ended")).to_be_visible(timeout=15_000)
        expect(page.locator("#autosave-status")).to_contain_text("session has ended")

        # Leaving now asks first; staying keeps everything.
        dialogs: list[str] = []

        def answer(dialog: Any) -> None:
            dialogs.append(dialog.type)
            dialog.dismiss()

        page.on("dialog", answer)
        page.get_by_role("link", name="Issues", exact=True).click()
        page.wait_for_timeout(500)  # a dismissed beforeunload leaves no other event to wait on
        assert dialogs == ["beforeunload"]
        assert page.url == edit_url
        page.remove_listener("dialog", answer)

        # Save anyway: the server keeps the text and offers sign-in…
        page.get_by_role("button", name="Save draft").click()
        expect(page.get_by_role("heading", name="Your session ended")).to_be_visible()
        shoot(page, "02-session-ended")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        # …and comes back to the same form, filled.
        page.wait_for_url(f"{edit_url}?revision=*")
        expect(page.get_by_label("Issue in Markdown")).to_have_value(more)
        expect(page.locator("#autosave-status")).to_contain_text("Saved at", timeout=15_000)
        shoot(page, "03-edit-back-after-sign-in")
        page.goto(edit_url)
        expect(page.get_by_label("Issue in Markdown")).to_contain_text("after the other tab")

        # The revisions are there to restore.
        page.get_by_role("link", name="Revisions").click()
        expect(page.locator("table tbody tr").first).to_be_visible()
        shoot(page, "04-revisions")
        browser.close()


def test_send_at_their_time_confirms_with_counts(live: tuple[str, Context]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, ctx = live
    add_account(ctx)
    add_subscribers(ctx, 3)
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, url)
        page.goto(f"{url}/editor/issues/new")
        page.get_by_label("Issue in Markdown").fill(TEXT)
        page.get_by_role("button", name="Save draft").click()
        # Saved by the button, or into the draft an autosave had just made.
        expect(page.locator("div.notice[role=status]")).to_contain_text(
            re.compile("(draft|changes) (is|are) saved")
        )
        issue_url = page.url.split("?")[0]
        day = (utcnow() - timedelta(days=1)).date()  # everyone's 06:00 has passed
        page.get_by_label("Day").fill(day.isoformat())
        page.get_by_role("button", name="Send at their time…").click()
        expect(page.get_by_role("heading", name="in each reader’s time zone")).to_be_visible()
        expect(page.locator("[data-plan='now']")).to_have_text("3")
        expect(page.locator("[data-plan='later']")).to_have_text("0")
        expect(page.get_by_text("as soon as you confirm")).to_be_visible()
        shoot(page, "05-send-local-confirm")
        page.get_by_role("link", name="Not now").click()
        assert page.url.startswith(issue_url)
        expect(page.locator(".meta .badge-draft")).to_be_visible()  # nothing was sent
        browser.close()


READERS = 300

SAMPLE_JS = """() => {
  const n = (name) => Number(
    document.querySelector(`[data-tile='${name}']`).textContent.replace(/,/g, ''));
  const rows = [...document.querySelectorAll('table.recipients tbody tr')]
    .map(r => r.dataset.status);
  const bar = document.querySelector('.progress progress');
  return {
    sent: n('sent'), waiting: n('waiting'), failed: n('failed'), unknown: n('unknown'),
    recipients: n('recipients'), bar: bar ? bar.value : null, rows: rows,
    reloaded: !window.__sameLoad,
  };
}"""


def test_live_tiles_agree_with_the_table_during_a_send(
    live: tuple[str, Context], smtp_server: SMTPTestServer, editor: dict[str, str]
) -> None:
    from fastapi.testclient import TestClient
    from playwright.sync_api import expect, sync_playwright

    url, ctx = live
    add_account(ctx)
    add_subscribers(ctx, READERS)
    smtp_server.handler.delay_seconds = 0.04  # a relay slow enough to watch the send
    from app.main import create_app

    with TestClient(create_app(ctx.settings, context=ctx)) as api:
        issue = new_issue(api, editor)
        assert api.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202
    per = 200
    results = f"{url}/editor/issues/{issue['id']}/results?per={per}"
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, url)
        page.goto(results)
        page.evaluate("() => { window.__sameLoad = true; }")
        worker = threading.Thread(target=run_worker, args=(ctx,))
        worker.start()
        samples = []
        shot = False
        while worker.is_alive():
            s = page.evaluate(SAMPLE_JS)
            if s["reloaded"]:
                break  # the page reloaded itself at the end of the send
            samples.append(s)
            if not shot and 30 < s["sent"] < 270:
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / "06-results-live-1280.png"))
                shot = True
            page.wait_for_timeout(300)
        worker.join(timeout=120)
        expect(page.locator(".meta .badge-sent")).to_be_visible(timeout=30_000)
        expect(page.locator("[data-tile='sent']")).to_have_text(str(READERS))
        page.goto(f"{url}/editor/issues/{issue['id']}/results")
        shoot(page, "07-results-sent")
        browser.close()
    middle = [s for s in samples if 0 < s["sent"] < READERS]
    assert middle, "no sample caught the send under way"
    for s in samples:
        done = s["sent"] + s["failed"] + s["unknown"]
        assert s["recipients"] == READERS
        assert s["bar"] is None or s["bar"] == done, s
        assert s["waiting"] == READERS - done, s
        shown_sent = s["rows"].count("sent")
        shown_waiting = sum(s["rows"].count(x) for x in ("pending", "sending", "retry"))
        # The table shows the first `per` of the readers: the rest are all it cannot show.
        assert shown_sent <= s["sent"] <= shown_sent + (READERS - per), s
        assert shown_waiting <= s["waiting"] <= shown_waiting + (READERS - per), s


def test_phone_width_nav_tiles_settings_and_true_preview_widths(
    live: tuple[str, Context], editor: dict[str, str]
) -> None:
    from fastapi.testclient import TestClient
    from playwright.sync_api import expect, sync_playwright

    from app.main import create_app

    url, ctx = live
    add_account(ctx)
    add_subscribers(ctx, 2)
    with TestClient(create_app(ctx.settings, context=ctx)) as api:
        issue = new_issue(api, editor)
        assert api.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, url)
        # The preview frames are the widths they say, on a desktop and on a phone.
        for width in (1280, 375):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{url}/editor/issues/{issue['id']}/preview")
            phone = page.locator("iframe[width='375']")
            desktop = page.locator("iframe[width='620']")
            assert phone.evaluate("f => f.clientWidth") == 375
            assert desktop.evaluate("f => f.clientWidth") == 620
            assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        shoot(page, "08-preview-widths")
        page.set_viewport_size({"width": 375, "height": 900})

        # The tabs scroll to Settings, which is then fully in view, without the fade.
        page.goto(f"{url}/editor/")
        nav = page.locator(".nav")
        nav.evaluate("n => { n.scrollLeft = n.scrollWidth; }")
        expect(nav).to_have_class("nav at-end")
        settings_box = nav.get_by_role("link", name="Settings").bounding_box()
        nav_box = nav.bounding_box()
        assert settings_box and nav_box
        assert settings_box["x"] + settings_box["width"] <= nav_box["x"] + nav_box["width"]

        # Tiles wrap inside their row; nothing pokes out of a tile or the page.
        page.goto(f"{url}/editor/issues/{issue['id']}/results")
        over = page.evaluate(
            "() => [...document.querySelectorAll('.tile')]"
            ".filter(t => t.scrollWidth > t.clientWidth + 1).length"
        )
        assert over == 0
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 375

        # Settings values wrap between words: no value is wider than its box, and a value
        # with spaces never breaks inside a word (its longest word still fits).
        page.goto(f"{url}/editor/settings")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
        broken = page.evaluate(
            """() => [...document.querySelectorAll('.facts dd')].filter(dd => {
                 const s = getComputedStyle(dd);
                 return s.overflowWrap === 'anywhere' || s.wordBreak === 'break-all'
                   || dd.scrollWidth > dd.clientWidth + 1;
               }).map(dd => dd.textContent)"""
        )
        assert broken == [], broken
        shoot(page, "09-settings")
        browser.close()


def test_first_morning_tour_pages(
    live: tuple[str, Context], editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    """Walk the new pages an editor meets on a first morning, and keep their screenshots."""
    from playwright.sync_api import expect, sync_playwright

    from app.db import session_scope
    from app.models import Click

    url, ctx = live
    add_account(ctx)
    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, url)
        expect(page.get_by_role("heading", name="Your first morning")).to_be_visible()
        shoot(page, "10-dashboard-checklist")

        # Import with a repeated address, then tick two readers and erase them in bulk.
        page.goto(f"{url}/editor/subscribers/import")
        csv_file = SHOTS / "repeat.csv"
        rows = [f"reader{i}@example.org,Reader {i}" for i in range(12)]
        csv_file.write_text("email,name\n" + "\n".join([*rows, "reader3@example.org,Renamed"]))
        page.get_by_label("CSV file").set_input_files(str(csv_file))
        page.get_by_role("button", name="Import").click()
        expect(page.get_by_text("Addresses that appear more than once")).to_be_visible()
        shoot(page, "11-import-repeats")
        page.goto(f"{url}/editor/subscribers?sort=email")
        expect(page.locator("[data-total='12']")).to_be_visible()
        page.get_by_label("Select reader0@example.org").check()
        page.get_by_label("Select reader1@example.org").check()
        page.get_by_label("With the selected").select_option("erase")
        shoot(page, "12-subscribers-bulk")
        page.get_by_role("button", name="Apply to selected…").click()
        expect(page.get_by_role("heading", name="Erase 2 subscribers?")).to_be_visible()
        shoot(page, "13-subscribers-bulk-confirm")
        page.get_by_role("button", name="Erase 2 subscribers").click()
        expect(page.locator("[data-total='10']")).to_be_visible()

        # A test copy whose web link opens the signed preview; its preferences say "test".
        page.goto(f"{url}/editor/issues/new")
        page.get_by_label("Issue in Markdown").fill(TEXT)
        page.get_by_role("button", name="Save draft").click()
        # Saved by the button, or into the draft an autosave had just made.
        expect(page.locator("div.notice[role=status]")).to_contain_text(
            re.compile("(draft|changes) (is|are) saved")
        )
        issue_url = page.url.split("?")[0]
        page.get_by_role("button", name="Send test copy").click()
        deliver_in_thread(ctx)
        [copy] = smtp_server.handler.wait_for(1)
        html = str(copy.message().get_body(preferencelist=("html",)).get_content())
        web = re.search(r'href="([^"]+/preview/[^"]+)"', html)
        prefs = re.search(r'href="([^"]+/preferences/[^"]+)"', html)
        assert web and prefs
        page.goto(web.group(1))
        expect(page.get_by_text("not sent yet")).to_be_visible()
        shoot(page, "14-web-preview")
        page.goto(prefs.group(1))
        expect(page.get_by_role("heading", name="This link is from a test copy")).to_be_visible()
        shoot(page, "15-test-copy-preferences")

        # Duplicate it; the issues list finds both by search.
        page.goto(issue_url)
        page.get_by_role("button", name="Duplicate as a new draft").click()
        expect(page.locator("div.notice[role=status]")).to_contain_text("next morning")
        page.goto(f"{url}/editor/issues?q=sign-out")
        expect(page.locator("table.issues tbody tr")).to_have_count(2)
        shoot(page, "16-issues-search")

        # Send it; clicks show on the results page and the dashboard.
        issue_id = int(issue_url.rsplit("/", 1)[1])
        from fastapi.testclient import TestClient

        from app.main import create_app

        with TestClient(create_app(ctx.settings, context=ctx)) as api:
            assert api.post(f"/issues/{issue_id}/send", headers=editor).status_code == 202
        deliver_in_thread(ctx)
        with session_scope(ctx.sessions) as session:
            for link, n in (("https://example.org/slm", 7), ("https://example.org/openmath", 3)):
                session.add_all(Click(issue_id=issue_id, url=link) for _ in range(n))
        page.goto(f"{url}/editor/")
        expect(page.get_by_role("heading", name="Clicks on the last issue")).to_be_visible()
        shoot(page, "17-dashboard-clicks")
        page.goto(f"{url}/editor/issues/{issue_id}/results")
        expect(page.locator("[data-tile='clicks']")).to_have_text("10")
        shoot(page, "18-results-clicks")
        browser.close()
