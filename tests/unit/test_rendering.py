"""The rendering package: blocks, the compiled email, its text part, web version and QR code."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app import paths
from app.config import Settings
from app.errors import InvalidInput, TemplateError
from app.rendering import placeholders
from app.rendering.blocks import BLOCK_TYPES, parse_blocks
from app.rendering.compile import CompiledEmail, Renderer

BASE = "https://news.example.org"
HARD_LIMIT = 998

# One minimal valid block of every type; a test below checks the list is complete.
MINIMAL: dict[str, dict[str, Any]] = {
    "masthead": {"type": "masthead", "date": "Monday"},
    "lead": {"type": "lead", "kicker": "Lead", "title": "Lead title", "body": "Lead **body**."},
    "article": {"type": "article", "title": "Article title", "body": "Article body."},
    "stats": {"type": "stats", "title": "Stats title", "items": [{"value": "42", "label": "x"}]},
    "cards": {
        "type": "cards",
        "title": "Cards title",
        "items": [{"title": "Card one", "description": "d", "url": "https://a.example/1"}],
    },
    "links": {"type": "links", "title": "Links title", "items": [{"title": "Link one"}]},
    "opinion": {"type": "opinion", "items": [{"title": "Piece one", "body": "Opinion body."}]},
    "trending": {
        "type": "trending",
        "title": "Trending title",
        "groups": [{"source": "GitHub", "items": [{"title": "repo/one", "metric": "★ 1"}]}],
    },
    "movers": {
        "type": "movers",
        "title": "Movers title",
        "items": [{"name": "M", "change": "+1%"}],
    },
    "subscribe": {"type": "subscribe", "title": "Subscribe title", "body": "Join us."},
    "markdown": {"type": "markdown", "body": "Plain *markdown* paragraph."},
    "image": {"type": "image", "url": "https://a.example/i.png", "alt": "Alt", "caption": "Cap"},
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(Settings(base_url=BASE, secret_keys=["k"]))


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    return json.loads((paths.examples_dir() / "ai-morning-post.json").read_text())


@pytest.fixture(scope="module")
def compiled(renderer: Renderer, sample: dict[str, Any]) -> CompiledEmail:
    blocks = parse_blocks(sample["blocks"])
    return renderer.compile_issue(
        subject=sample["subject"], preheader=sample["preheader"], slug=sample["slug"], blocks=blocks
    )


@pytest.fixture(scope="module")
def web(renderer: Renderer, sample: dict[str, Any]) -> str:
    blocks = parse_blocks(sample["blocks"])
    return renderer.web_version(
        subject=sample["subject"], preheader=sample["preheader"], slug=sample["slug"], blocks=blocks
    )


def compile_blocks(renderer: Renderer, raw: list[dict[str, Any]]) -> CompiledEmail:
    return renderer.compile_issue(subject="S", preheader="P", slug="s", blocks=parse_blocks(raw))


def flat(markup: str) -> str:
    """Collapse whitespace: long lines are wrapped at spaces, so phrases may span lines."""
    return " ".join(markup.split())


def visible(markup: str) -> str:
    """Return markup with whitespace collapsed and entities decoded, for phrase searches."""
    return html.unescape(flat(markup))


def section_titles(sample: dict[str, Any]) -> list[str]:
    titles = [b["title"] for b in sample["blocks"] if "title" in b]
    titles += [p["title"] for b in sample["blocks"] if b["type"] == "opinion" for p in b["items"]]
    return titles


# Blocks -------------------------------------------------------------------------------


def test_minimal_covers_every_block_type() -> None:
    assert set(MINIMAL) == set(BLOCK_TYPES)


@pytest.mark.parametrize("kind", BLOCK_TYPES)
def test_every_block_type_renders(renderer: Renderer, kind: str) -> None:
    email = compile_blocks(renderer, [MINIMAL[kind]])
    for text in ("title", "body"):
        value = MINIMAL[kind].get(text)
        if value and "*" not in value:
            assert value in flat(email.html)
            assert value in flat(email.text)
    assert placeholders.UNSUBSCRIBE_TOKEN in email.html


def test_all_blocks_together(renderer: Renderer) -> None:
    email = compile_blocks(renderer, list(MINIMAL.values()))
    assert "<strong>body</strong>" in email.html
    assert "Piece one" in email.html and "repo/one" in email.text


def test_unknown_type_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"block 2: unknown type 'poll'"):
        parse_blocks([MINIMAL["markdown"], {"type": "poll", "body": "x"}])


def test_missing_nested_field_names_the_place() -> None:
    bad = {"type": "cards", "title": "T", "items": [{"description": "no title"}]}
    with pytest.raises(InvalidInput) as info:
        parse_blocks([MINIMAL["lead"], MINIMAL["stats"], bad])
    assert info.value.message == "block 3 (cards): items[0].title is required"


def test_extra_field_and_wrong_shape_are_refused() -> None:
    with pytest.raises(InvalidInput, match=r"block 1 \(lead\): colour is not a field"):
        parse_blocks([{**MINIMAL["lead"], "colour": "red"}])
    with pytest.raises(InvalidInput, match="blocks must be a list"):
        parse_blocks({"type": "lead"})
    with pytest.raises(InvalidInput, match="block 1: type is required"):
        parse_blocks([{"title": "x"}])


def test_crlf_in_bodies_is_fine_and_titles_are_one_line() -> None:
    [block] = parse_blocks([{"type": "article", "title": "Two\r\nlines", "body": "a\r\n\r\nb"}])
    assert block["title"] == "Two lines"
    assert block["body"] == "a\n\nb"


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,x", "ftp://x.example", "https://a b.example"]
)
def test_block_urls_must_be_http_or_mailto(url: str) -> None:
    bad = {"type": "links", "title": "T", "items": [{"title": "x", "url": url}]}
    with pytest.raises(InvalidInput, match=r"block 1 \(links\): items\[0\]\.url"):
        parse_blocks([bad])


def test_mailto_is_a_valid_link() -> None:
    ok = {"type": "links", "title": "T", "items": [{"title": "x", "url": "mailto:a@example.org"}]}
    assert parse_blocks([ok])[0]["items"][0]["url"] == "mailto:a@example.org"


def test_placeholder_in_content_is_refused() -> None:
    with pytest.raises(InvalidInput, match="reserved placeholder"):
        parse_blocks([{"type": "markdown", "body": placeholders.UNSUBSCRIBE_TOKEN}])


def test_markdown_is_sanitised(renderer: Renderer) -> None:
    body = (
        "[click](javascript:alert(1)) and <script>alert(2)</script> "
        '<a href="javascript:alert(3)">raw</a> <img src=x onerror=alert(4)>'
    )
    email = compile_blocks(renderer, [{"type": "markdown", "body": body}])
    # What survives is inert text; no tag carries a script, handler or javascript: URL.
    tags = [t.lower() for t in re.findall(r"<[^!][^>]*>", email.html)]
    assert not [t for t in tags if "javascript:" in t or "onerror" in t or t.startswith("<script")]
    assert "&lt;script&gt;" in email.html
    assert not re.search(r"\[\d+\]\s+javascript:", email.text)


# The sample issue ---------------------------------------------------------------------


def test_sample_has_every_section(compiled: CompiledEmail, sample: dict[str, Any]) -> None:
    kinds = {b["type"] for b in sample["blocks"]}
    assert kinds >= {"masthead", "lead", "stats", "article", "opinion", "cards"}
    assert kinds >= {"trending", "movers", "links", "subscribe"}
    for title in section_titles(sample):
        assert title in visible(compiled.html), title
        assert title.upper() in flat(compiled.text).upper(), title  # sub-heads are capitalised
    for needle in (
        "The AI Morning Post",
        "Scan to subscribe on mobile",
        "huggingface/transformers",
    ):
        assert needle in flat(compiled.html)


def test_sample_html_is_under_90_kb(compiled: CompiledEmail) -> None:
    size = len(compiled.html.encode())
    assert size < 90 * 1024, f"compiled HTML is {size} bytes; Gmail clips at 102 KB"


def test_placeholders_appear_exactly_where_expected(compiled: CompiledEmail) -> None:
    unsubscribe = f"{BASE}/unsubscribe/{placeholders.UNSUBSCRIBE_TOKEN}"
    preferences = f"{BASE}/preferences/{placeholders.PREFERENCES_TOKEN}"
    for part in (compiled.html, compiled.text):
        assert part.count(placeholders.UNSUBSCRIBE_TOKEN) == 1
        assert part.count(placeholders.PREFERENCES_TOKEN) == 1
        assert unsubscribe in part and preferences in part
        assert f"{BASE}/archive/2026-03-03-the-specialization-wave" in part
    assert f'href="{unsubscribe}"' in compiled.html


def test_inline_qr_image(compiled: CompiledEmail) -> None:
    [image] = compiled.images
    assert f'src="cid:{image.cid}"' in compiled.html
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_html_head_and_accessibility(compiled: CompiledEmail) -> None:
    html = compiled.html
    assert html.startswith("<!DOCTYPE html>")
    assert re.search(r'<meta\s+name="color-scheme"\s+content="light dark"', html)
    assert "prefers-color-scheme: dark" in flat(html)
    assert "<!--[if mso" in html  # Outlook conditionals survive premailer
    assert "@media only screen and (min-width:480px)" in flat(html)
    assert compiled.preheader in visible(compiled.html)
    assert "fonts.googleapis.com" not in html
    imgs = re.findall(r"<img\b[^>]*>", html)
    assert imgs
    for tag in imgs:
        assert re.search(r'\salt="[^"]+"', tag), tag


def test_css_is_inlined_once(compiled: CompiledEmail) -> None:
    # Rules from the marked stylesheet end up on the elements, and the stylesheet is gone.
    assert re.search(r"<h2\s+style=.font-family:Georgia", compiled.html)
    assert "/* inline */" not in compiled.html


@pytest.mark.parametrize("part", ["html", "text"])
def test_no_line_exceeds_998_octets(compiled: CompiledEmail, part: str) -> None:
    body: str = getattr(compiled, part)
    longest = max(len(line.encode()) for line in body.splitlines())
    assert longest <= HARD_LIMIT


def test_text_part_reads_alone(compiled: CompiledEmail) -> None:
    text = compiled.text
    assert text.startswith("THE AI MORNING POST\n")
    assert "Tools of the Week\n-----------------\n" in text
    assert "\nLinks:\n[1] https://" in text
    assert "[1]" in text.split("Links:")[0]
    body = text.split("\nLinks:\n")[0]
    assert max(len(line) for line in body.splitlines()) <= 80
    assert "<" not in body.replace("> ONNX > CoreML > TFLite", "")


def test_web_version_has_no_tokens(web: str, sample: dict[str, Any]) -> None:
    for token in placeholders.ALL:
        assert token not in web
    assert "/unsubscribe/" not in web and "/preferences/" not in web
    assert "MPX" not in web
    # The page around it carries the one sign-up form: no subscribe block, QR or link here.
    assert f'href="{BASE}/subscribe"' not in web and "qr.png" not in web
    assert "cid:" not in web
    assert re.search(r'property="og:title"\s+content="The Specialization Wave', web)
    assert re.search(r'property="og:url"\s+content="' + re.escape(f"{BASE}/archive/"), web)
    assert 'property="og:description"' in web
    calls = {b["title"] for b in sample["blocks"] if b["type"] == "subscribe"}
    for title in section_titles(sample):
        if title not in calls:
            assert title in visible(web)


# Confirmation email and QR ------------------------------------------------------------


def test_confirmation_email(renderer: Renderer) -> None:
    url = f"{BASE}/confirm/abc.def?x=1&y=2"
    email = renderer.confirmation_email(confirm_url=url)
    assert "Confirm your subscription" in flat(email.html)
    assert 'href="https://news.example.org/confirm/abc.def?x=1&amp;y=2"' in email.html
    assert url in email.text
    assert email.images == ()
    for token in placeholders.ALL:
        assert token not in email.html and token not in email.text
    assert re.search(r'<meta\s+name="color-scheme"', email.html)


def test_qr_png_decodes(renderer: Renderer) -> None:
    png = renderer.qr_png()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) < 4096
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size[0] == image.size[1] >= 100
        rgb = image.convert("RGB")
        assert (255, 255, 255) not in {c for _, c in rgb.getcolors() or []}


# Broken templates ---------------------------------------------------------------------


def copy_templates(tmp_path: Path) -> Path:
    target = tmp_path / "email_templates"
    shutil.copytree(paths.email_templates_dir(), target)
    return target


def test_broken_jinja_partial_is_a_template_error(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    (templates / "blocks" / "markdown.mjml").write_text("{% if %}")
    renderer = Renderer(Settings(base_url=BASE, secret_keys=["k"]), templates_dir=templates)
    with pytest.raises(TemplateError, match=r"markdown\.mjml"):
        compile_blocks(renderer, [MINIMAL["markdown"]])


def test_broken_mjml_is_a_template_error(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    (templates / "blocks" / "markdown.mjml").write_text("<mj-section><mj-column>")
    renderer = Renderer(Settings(base_url=BASE, secret_keys=["k"]), templates_dir=templates)
    with pytest.raises(TemplateError, match="MJML error"):
        compile_blocks(renderer, [MINIMAL["markdown"]])


def test_undefined_variable_is_a_template_error(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    (templates / "blocks" / "markdown.mjml").write_text("{{ block.nothing_here }}")
    renderer = Renderer(Settings(base_url=BASE, secret_keys=["k"]), templates_dir=templates)
    with pytest.raises(TemplateError):
        compile_blocks(renderer, [MINIMAL["markdown"]])
