"""In Chromium: add images in the Markdown editor (button, drop), then read the preflight
checklist beside the preview, at 375 and 1280 px, light and dark."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.context import Context
from app.issues.linkcheck import LinkChecker
from tests.browser_support import ARGS, CHROMIUM
from tests.console_support import EMAIL, PASSWORD, add_account
from tests.preflight_support import Site, resolver

SHOTS = Path("/work/shots/media") if Path("/work/shots").exists() else None
WIDTHS = (375, 1280)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


def _shoot(page: Any, name: str, tmp: Path) -> None:
    """Save the page at phone and desktop width, light and dark."""
    folder = SHOTS or tmp
    folder.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            suffix = "" if scheme == "light" else "-dark"
            page.screenshot(path=str(folder / f"{name}-{width}{suffix}.png"), full_page=True)
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 1280, "height": 900})


def _jpeg(width: int, height: int) -> bytes:
    image = Image.new("RGB", (width, height), (180, 54, 30))
    image.paste((26, 86, 168), (0, 0, width // 2, height))
    out = io.BytesIO()
    image.save(out, format="JPEG")
    return out.getvalue()


def test_images_and_the_preflight_checklist(live: tuple[str, Context], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, ctx = live
    add_account(ctx)
    errors: list[str] = []
    with Site() as site, sync_playwright() as pw:
        ctx._links = LinkChecker(
            timeout=3, concurrency=4, cache_seconds=600, allow_private=True, resolver=resolver
        )
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        page.goto(f"{url}/editor/login")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

        page.goto(f"{url}/editor/issues/new")
        textarea = page.get_by_label("Issue in Markdown")
        textarea.fill(
            "---\nsubject: Pictures\npreheader: A morning in images\n---\n"
            "## The lead {lead}\nTo read the report, [click here]"
            f"({site.url}/missing).\n\n## {{markdown}}\n"
        )
        # The button: the editor names the image when asked.
        page.once("dialog", lambda d: d.accept("A red and blue test card"))
        page.locator("[data-upload-input]").set_input_files(
            files=[{"name": "card.jpg", "mimeType": "image/jpeg", "buffer": _jpeg(2400, 1200)}]
        )
        expect(page.locator("[data-upload-status]")).to_contain_text("Image added (1200×600 px)")
        value = textarea.input_value()
        found = re.search(
            r"!\[A red and blue test card\]\((http://[^)]+/media/[0-9a-f]{64}\.jpg)\)", value
        )
        assert found, value
        assert page.request.get(found.group(1)).headers["cache-control"].endswith("immutable")

        # A drop: the editor dismisses the question, and a visible placeholder goes in.
        page.once("dialog", lambda d: d.dismiss())
        data = base64.b64encode(_jpeg(300, 200)).decode()
        page.evaluate(
            """(b64) => {
                const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], "dropped.jpg", {type: "image/jpeg"}));
                const ta = document.getElementById("markdown");
                ta.focus(); ta.setSelectionRange(ta.value.length, ta.value.length);
                const drop = {dataTransfer: dt, bubbles: true, cancelable: true};
                ta.dispatchEvent(new DragEvent("drop", drop));
            }""",
            data,
        )
        expect(page.locator("[data-upload-status]")).to_contain_text("Replace DESCRIBE THIS IMAGE")
        assert "![DESCRIBE THIS IMAGE](" in textarea.input_value()
        # A paste of an image (a screenshot, say) works the same way.
        page.once("dialog", lambda d: d.accept("A pasted screenshot"))
        page.evaluate(
            """(b64) => {
                const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], "image.png", {type: "image/jpeg"}));
                const ta = document.getElementById("markdown");
                ta.focus(); ta.setSelectionRange(ta.value.length, ta.value.length);
                const paste = {clipboardData: dt, bubbles: true, cancelable: true};
                ta.dispatchEvent(new ClipboardEvent("paste", paste));
            }""",
            data,
        )
        expect(textarea).to_have_value(re.compile(r"!\[A pasted screenshot\]\(http"))
        # The live preview follows: the images, each a paragraph of its own.
        frame = page.frame_locator("#preview-frame")
        expect(frame.locator("img[alt='DESCRIBE THIS IMAGE']")).to_be_visible()
        expect(frame.locator("img[alt='A red and blue test card']")).to_be_visible()
        _shoot(page, "01-editor-with-images", tmp_path)

        page.get_by_role("button", name="Save draft").click()
        # Autosave may have made the draft already: either notice says the text is kept.
        saved = re.compile(r"The draft is saved\.|Your changes are saved\.")
        expect(page.locator("div.notice[role=status]")).to_contain_text(saved)
        page.get_by_role("link", name="Preview at both widths").click()

        checklist = page.locator(".preflight")
        expect(checklist.get_by_role("heading", name="Preflight")).to_be_visible()
        expect(checklist).to_contain_text("1 to fix before sending")
        expect(checklist.locator("[data-rule=images]")).to_contain_text("has no alt text")
        expect(checklist.locator("[data-rule=link_text]")).to_contain_text("'click here'")
        expect(checklist.locator("[data-rule=subject]")).to_contain_text("8 characters")
        expect(checklist.locator("[data-rule=links]")).to_contain_text("not fetched yet")
        assert checklist.locator("meter#html-size").get_attribute("value")
        assert site.hits == []
        _shoot(page, "02-preview-checklist", tmp_path)

        checklist.get_by_role("link", name="Check that they answer").click()
        expect(page.locator("[data-rule=links]")).to_contain_text("answers 404 (not found)")
        assert ("HEAD", "/missing") in site.hits
        _shoot(page, "03-preview-links-checked", tmp_path)
        browser.close()
    assert errors == []
