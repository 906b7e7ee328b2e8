"""/docs and /redoc render in headless Chromium with every request off this server refused."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from app.context import Context
from tests.browser_support import ARGS, CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


def test_docs_render_without_internet(live: tuple[str, Context]) -> None:
    from playwright.sync_api import sync_playwright

    url, _ = live
    ours = urlsplit(url).netloc
    outside: list[str] = []
    errors: list[str] = []

    def only_local(route: Any) -> None:
        if urlsplit(route.request.url).netloc == ours or route.request.url.startswith("data:"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()  # as on a machine with no internet

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page()
        page.route("**/*", only_local)
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(f"{url}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/issues/{issue_id}/test" in p for p in paths), paths

        page.goto(f"{url}/redoc")
        page.wait_for_function("document.body.innerText.includes('Create Issue')", timeout=20_000)
        assert page.locator("h1").first.inner_text().startswith("Morning Post")
        browser.close()
    assert outside == []
    assert errors == []
