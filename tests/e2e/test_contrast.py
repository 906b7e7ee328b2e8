"""WCAG AA contrast of every visible text, light and dark, in the emails and every public page.

Headless Chromium loads each view with `prefers-color-scheme` light and dark at 375 and 1280 px,
measures each text element's colour against its effective background (ancestors' backgrounds
alpha-composited over the canvas) and fails on anything under 4.5:1 (3:1 for large text).
Screenshots of every view land in test-artifacts/reader/, the lowest ratios in contrast.txt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from app.config import Settings
from app.context import Context, build_context
from app.db import session_scope
from app.demo import sample_issue_payload
from app.issues.service import preview_html
from app.models import Issue, IssueStatus, Subscriber, utcnow
from app.rendering.blocks import parse_blocks
from app.tokens import hash_secret
from tests.browser_support import ARGS, CHROMIUM
from tests.helpers import nonce_of
from tests.live_server import LiveServer
from tests.smtp_server import free_port

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reader"
SCRIPT = (Path(__file__).resolve().parents[1] / "contrast.js").read_text()
WIDTHS = (375, 1280)
SCHEMES = ("light", "dark")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


@dataclass
class Site:
    """The live app with the sample issue sent and readers in every state a page needs."""

    url: str
    ctx: Context
    slug: str
    emails: dict[str, str]  # name → HTML of an email as a reader's client renders it
    tokens: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def site(settings: Settings, engine: Engine) -> Iterator[Site]:
    """Serve the app over HTTP with the data every page needs."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ctx = build_context(
        settings.model_copy(
            update={"base_url": url, "postal_address": "1 Fleet Street, London EC4Y 1AA"}
        ),
        engine=engine,
    )
    payload = sample_issue_payload()
    with session_scope(ctx.sessions) as s:
        issue = Issue(
            slug=payload["slug"],
            subject=payload["subject"],
            preheader=payload["preheader"],
            blocks=parse_blocks(payload["blocks"]),
            status=IssueStatus.sent,
            started_at=utcnow(),
        )
        readers = [
            Subscriber(
                email=f"{who}@example.org",
                email_hash=hash_secret(f"{who}@example.org"),
                name=who.title(),
                status=status,
                confirmed_at=utcnow(),
            )
            for who, status in (("active", "active"), ("leaving", "active"), ("pending", "pending"))
        ]
        s.add_all([issue, *readers])
        s.flush()
        ids = {r.email.split("@")[0]: r.id for r in readers}
        emails = {
            "email-issue": preview_html(ctx.renderer, ctx.tokens, issue),
            "email-confirm": ctx.renderer.confirmation_email(confirm_url=f"{url}/confirm/x").html,
            "email-welcome": ctx.renderer.welcome_email().html,
        }
    tokens = {
        "preferences": ctx.tokens.preferences_token(ids["active"], nonce_of(ctx, ids["active"])),
        "unsubscribe": ctx.tokens.unsubscribe_token(ids["leaving"], nonce_of(ctx, ids["leaving"])),
        "confirm": ctx.tokens.confirm_token(ids["pending"], "pending@example.org"),
    }
    with LiveServer(ctx, port):
        yield Site(url, ctx, payload["slug"], emails, tokens)


def _views(site: Site, run: str) -> list[tuple[str, Callable[[Any], None]]]:
    """Return (name, how to get there) for every email and page."""
    u, t = site.url, site.tokens

    def go(path: str) -> Callable[[Any], None]:
        return lambda page: page.goto(u + path)

    def email(name: str) -> Callable[[Any], None]:
        def show(page: Any) -> None:
            page.goto(u + "/healthz")  # same origin, so /subscribe/qr.png resolves
            page.set_content(site.emails[name])

        return show

    def check_inbox(page: Any) -> None:
        page.goto(u + "/subscribe")
        page.fill("#email", f"new-{run}@example.org")
        page.click("form.form button[type=submit]")
        page.wait_for_selector("text=Check your inbox")

    def after_click(path: str, button: str, expect: str) -> Callable[[Any], None]:
        def act(page: Any) -> None:
            page.goto(u + path)
            page.click(f"main form button:has-text('{button}')")
            page.wait_for_selector(f"text={expect}")

        return act

    return [
        *[(name, email(name)) for name in site.emails],
        ("home", go("/")),
        ("subscribe", go("/subscribe")),
        ("check-inbox", check_inbox),
        ("confirm", go(f"/confirm/{t['confirm']}")),
        ("confirmed", after_click(f"/confirm/{t['confirm']}", "Confirm", "You're subscribed")),
        ("unsubscribe", go(f"/unsubscribe/{t['unsubscribe']}")),
        (
            "unsubscribed",
            after_click(f"/unsubscribe/{t['unsubscribe']}", "Unsubscribe", "You're unsubscribed"),
        ),
        ("preferences", go(f"/preferences/{t['preferences']}")),
        ("archive", go("/archive")),
        ("archive-issue", go(f"/archive/{site.slug}")),
        ("not-found", go("/no/such/page")),
    ]


def test_every_view_passes_wcag_aa_in_both_schemes(site: Site) -> None:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    offenders: list[str] = []
    lowest: dict[str, tuple[float, str]] = {}
    counted: dict[str, int] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        for scheme in SCHEMES:
            for width in WIDTHS:
                context = browser.new_context(
                    color_scheme=scheme, viewport={"width": width, "height": 900}
                )
                page = context.new_page()
                for name, reach in _views(site, f"{scheme}-{width}"):
                    reach(page)
                    page.wait_for_load_state("load")
                    page.screenshot(
                        path=str(SHOTS / f"{name}-{width}-{scheme}.png"), full_page=True
                    )
                    found = page.evaluate(SCRIPT)
                    assert found, f"{name}: no text measured"
                    counted[scheme] = counted.get(scheme, 0) + len(found)
                    for item in found:
                        where = f"{name} @{width}px {scheme}"
                        if item["ratio"] < lowest.get(scheme, (99.0, ""))[0]:
                            lowest[scheme] = (item["ratio"], f"{where}: {item['text']!r}")
                        if item["ratio"] < item["need"]:
                            offenders.append(
                                f"{where}: {item['ratio']}:1 < {item['need']} "
                                f"{item['fg']} on {item['bg']} {item['text']!r} ({item['path']})"
                            )
                context.close()
        browser.close()
    report = {
        scheme: {"lowest_ratio": ratio, "where": where, "texts_measured": counted[scheme]}
        for scheme, (ratio, where) in lowest.items()
    }
    (SHOTS / "contrast.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print("\nlowest contrast:", json.dumps(report, ensure_ascii=False))
    assert not offenders, "below WCAG AA:\n" + "\n".join(offenders)
    assert set(lowest) == set(SCHEMES)
