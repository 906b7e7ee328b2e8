"""The console's A/B form on the send page and the variants on the results page; screenshots
at both widths in both schemes (headless Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.issues.schemas import IssueIn
from app.issues.service import create_issue
from app.models import AbTest
from tests.browser_support import ARGS, CHROMIUM
from tests.console_support import EMAIL, PASSWORD, add_account, sign_in
from tests.helpers import SIMPLE_BLOCKS, add_subscribers, deliver_in_thread, new_issue, run_worker
from tests.smtp_server import SMTPTestServer

SHOTS = Path("/work/shots/sequences")


def test_the_send_page_starts_a_subject_test_and_results_decide_it(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 10)
    issue = new_issue(client, editor, preheader="Small models, big gains")
    add_account(ctx)
    csrf = sign_in(client)
    page = client.get(f"/editor/issues/{issue['id']}/send")
    assert "Or test subjects first" in page.text and 'data-ab-preview="1"' in page.text
    form = {
        "csrf_token": csrf,
        "subject0": "The AI Morning Post",
        "subject1": "Small models <b>win</b>",
        "sample_percent": "40",
        "decide_after": "PT2H",
    }
    assert (
        client.post(
            f"/editor/issues/{issue['id']}/send-ab", data={**form, "csrf_token": ""}
        ).status_code
        == 403
    )
    bad = client.post(f"/editor/issues/{issue['id']}/send-ab", data={**form, "subject1": ""})
    assert bad.status_code == 422 and "2 to 4 subjects" in bad.text
    results = client.post(f"/editor/issues/{issue['id']}/send-ab", data=form)
    assert results.status_code == 200 and "Subject test" in results.text
    assert "Small models &lt;b&gt;win&lt;/b&gt;" in results.text  # escaped
    run_worker(ctx)
    decided = client.post(
        f"/editor/issues/{issue['id']}/ab/decide",
        data={"csrf_token": csrf, "subject": "Small models <b>win</b>"},
    )
    assert decided.status_code == 200 and "winner" in decided.text
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(AbTest.winner)) == 1


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
