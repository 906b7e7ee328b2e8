"""A newsletter's public pages in headless Chromium: nothing wider than a 375 px phone.

Set MORNINGPOST_SHOTS to a folder to keep screenshots of each page at 375 and 1280 px, in
light and dark.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.audience.newsletters import create_newsletter
from app.context import Context
from app.db import session_scope
from app.demo import sample_issue_payload
from app.models import Issue, IssueStatus, utcnow
from app.rendering.blocks import parse_blocks

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
WIDTHS = (375, 1280)
SCHEMES = ("light", "dark")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

# How much wider than the viewport the document is (0: no sideways scrolling).
OVERFLOW_JS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def _robots(ctx: Context) -> str:
    """Make a second newsletter with the sample issue and two more; return the sample's slug."""
    payload = sample_issue_payload()
    with session_scope(ctx.sessions) as s:
        robots = create_newsletter(
            s,
            {
                "slug": "robots",
                "name": "Robots Weekly",
                "tagline": "Machines, models and the people who build them",
                "postal_address": "Robots Weekly, 2 Gear Lane, Leeds LS1 4AP, UK",
            },
            utcnow(),
        )
        s.flush()
        for days, (slug, subject, preheader, blocks) in enumerate(
            [
                (
                    payload["slug"],
                    payload["subject"],
                    payload["preheader"],
                    payload["blocks"],
                ),
                (
                    "small-models-big-jobs",
                    "Small models, big jobs: what a 3B model does on a laptop",
                    "Benchmarks from a week of running models offline.",
                    [{"type": "markdown", "body": "A week offline with small models."}],
                ),
                (
                    "a-very-long-word-antidisestablishmentarianism-in-titles",
                    "Supercalifragilisticexpialidocious-tokenisation: long words in titles",
                    "",
                    [{"type": "markdown", "body": "https://example.org/" + "x" * 120}],
                ),
            ]
        ):
            started = utcnow() - timedelta(days=days + 1)
            s.add(
                Issue(
                    slug=slug,
                    subject=subject,
                    preheader=preheader,
                    blocks=parse_blocks(blocks),
                    status=IssueStatus.sent,
                    started_at=started,
                    finished_at=started,
                    newsletter_id=robots.id,
                )
            )
    return str(payload["slug"])


def test_newsletter_pages_fit_a_phone_in_light_and_dark(live: tuple[str, Context]) -> None:
    from playwright.sync_api import sync_playwright

    url, ctx = live
    sample = _robots(ctx)
    pages = {
        "home": "/n/robots",
        "archive": "/n/robots/archive",
        "issue": f"/n/robots/archive/{sample}",
        "subscribe": "/n/robots/subscribe",
    }
    shots = os.environ.get("MORNINGPOST_SHOTS")
    errors: list[str] = []
    wider: dict[str, int] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        for scheme in SCHEMES:
            for width in WIDTHS:
                page: Any = browser.new_page(
                    viewport={"width": width, "height": 900}, color_scheme=scheme
                )
                page.on(
                    "console",
                    lambda m: errors.append(m.text) if m.type == "error" else None,
                )
                for name, path in pages.items():
                    response = page.goto(f"{url}{path}")
                    assert response is not None and response.status == 200, path
                    assert "Robots Weekly" in page.content(), path
                    if shots:
                        Path(shots).mkdir(parents=True, exist_ok=True)
                        target = Path(shots) / f"{name}-{width}-{scheme}.png"
                        page.screenshot(path=str(target), full_page=True)
                    if width == 375:
                        wider.update({path: page.evaluate(OVERFLOW_JS)})
                page.close()
        browser.close()
    assert wider == dict.fromkeys(pages.values(), 0)  # nothing scrolls sideways on a phone
    assert errors == []  # e.g. a style or script the page's CSP refused
