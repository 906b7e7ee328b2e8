"""The console's Sequences page: add one from drafts, see its timeline and numbers, pause,
resume, remove; and screenshots at both widths in both schemes (headless Chromium)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.automations.sequences import service
from app.automations.sequences.scheduler import tick
from app.context import Context
from app.db import session_scope
from app.models import Issue, Sequence, utcnow
from app.rendering.blocks import parse_blocks
from tests.browser_support import ARGS, CHROMIUM
from tests.console_support import EMAIL, PASSWORD, add_account, sign_in
from tests.helpers import SIMPLE_BLOCKS, deliver_in_thread
from tests.sequence_support import confirmed
from tests.smtp_server import SMTPTestServer

SHOTS = Path("/work/shots/sequences")


def drafts(ctx: Context, *subjects: str) -> list[int]:
    """Create draft issues with these subjects; return their ids."""
    with session_scope(ctx.sessions) as session:
        rows = [
            Issue(slug=f"draft-{n}", subject=s, blocks=parse_blocks(SIMPLE_BLOCKS))
            for n, s in enumerate(subjects)
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def test_the_console_adds_a_sequence_shows_its_steps_and_pauses_it(
    ctx: Context, client: TestClient
) -> None:
    add_account(ctx)
    csrf = sign_in(client)
    ids = drafts(ctx, "Welcome aboard", "Our best stories")
    form = {
        "csrf_token": csrf,
        "name": "Welcome series",
        "trigger": "confirmed",
        "issue0": str(ids[0]),
        "after0": "PT0S",
        "issue1": str(ids[1]),
        "after1": "P3D",
        "at1": "06:00",
        "issue2": "",
    }
    page = client.post("/editor/sequences", data=form)
    assert page.status_code == 200 and "The sequence is on" in page.text
    assert "Our best stories" in page.text and "at 06:00 reader's time" in page.text
    bad = client.post("/editor/sequences", data={**form, "after1": "three days"})
    assert bad.status_code == 422 and "ISO 8601" in bad.text
    assert client.post("/editor/sequences", data={**form, "csrf_token": ""}).status_code == 403
    with session_scope(ctx.sessions) as session:
        (seq_id,) = session.scalars(select(Sequence.id)).all()
    paused = client.post(f"/editor/sequences/{seq_id}/status", data={"csrf_token": csrf})
    assert "Paused" in paused.text and "Resume" in paused.text
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Sequence, seq_id).status == "paused"
    resumed = client.post(
        f"/editor/sequences/{seq_id}/status", data={"csrf_token": csrf, "status": "active"}
    )
    assert "Resumed" in resumed.text
    gone = client.post(f"/editor/sequences/{seq_id}/remove", data={"csrf_token": csrf})
    assert "The sequence is removed" in gone.text and "seq-head" not in gone.text


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
