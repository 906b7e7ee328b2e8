"""The console's Relays page in Chromium: state, quota bars and errors, at both widths, light
and dark (screenshots under test-artifacts/console/relays-*)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from app.config import Settings
from app.context import build_context
from app.db import session_scope
from app.models import utcnow
from app.sends.store import relays as store
from tests.browser_support import ARGS, CHROMIUM, shoot
from tests.console_support import EMAIL, PASSWORD, add_account
from tests.live_server import LiveServer
from tests.smtp_server import free_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


def test_the_relays_page_shows_state_quota_bars_and_errors(
    settings: Settings, engine: Engine
) -> None:
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    relays = (
        "smtp://user:secret@email-smtp.eu-west-1.amazonaws.com:587?name=ses&rate=14&daily=50000,"
        "smtp://apikey:secret@smtp.sendgrid.net:587?name=sendgrid&daily=100&weight=2,"
        "smtps://pm:secret@smtp.postmarkapp.com:465?name=postmark"
    )
    ctx = build_context(
        settings.model_copy(update={"base_url": url, "smtp_url": relays}), engine=engine
    )
    today, now = utcnow().date(), utcnow()
    with session_scope(ctx.sessions) as session:
        conn = session.connection()
        store.reserve_daily(conn, "ses", today, 50, 50000)
        store.reserve_daily(conn, "ses", today, 50, 50000)
        store.reserve_daily(conn, "sendgrid", today, 100, 100)
        store.count_usage(conn, "postmark", today, 12)
        store.note_state(
            conn,
            "postmark",
            rested_until=now + timedelta(minutes=2),
            failures=2,
            error="The relay smtp.postmarkapp.com:465 refused the login (535 5.7.8 bad "
            "credentials): check the user name and password in MORNINGPOST_SMTP_URL.",
            at=now,
        )
    add_account(ctx)
    with LiveServer(ctx, port), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/editor/login")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Relays", exact=True).click()
        expect(page.get_by_role("heading", name="Relays")).to_be_visible()
        expect(page.get_by_text("over quota")).to_be_visible()
        expect(page.get_by_text("resting")).to_be_visible()
        expect(page.get_by_text("refused the login")).to_be_visible()
        assert page.get_by_role("progressbar").count() == 2  # the relays with a daily quota
        assert "secret" not in page.content()  # passwords never reach the page
        shoot(page, "relays")
        browser.close()
