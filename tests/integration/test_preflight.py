"""Preflight: size meter, links that answer, images, subject length, link text, text part.

Links are checked against a real HTTP server on loopback (allowed with the allow-private flag).
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.context import Context
from app.issues.linkcheck import LinkChecker
from tests.console_support import add_account, sign_in
from tests.helpers import add_subscribers
from tests.preflight_support import Site, resolver

GOOD_SUBJECT = "The AI Morning Post, Tuesday"


@pytest.fixture
def site() -> Iterator[Site]:
    """Serve the small site on a free loopback port."""
    with Site() as s:
        yield s


@pytest.fixture
def open_ctx(ctx: Context) -> Context:
    """The context with private addresses allowed for the link check (as the flag does)."""
    ctx._links = LinkChecker(
        timeout=3.0, concurrency=4, cache_seconds=600, allow_private=True, resolver=resolver
    )
    return ctx


@pytest.fixture
def closed_ctx(ctx: Context) -> Context:
    """The context with the default: private addresses refused."""
    ctx._links = LinkChecker(
        timeout=3.0, concurrency=4, cache_seconds=600, allow_private=False, resolver=resolver
    )
    return ctx


def create(client: TestClient, editor: dict[str, str], blocks: list[Any], **fields: Any) -> int:
    """Create an issue and return its id."""
    body = {"subject": GOOD_SUBJECT, "preheader": "Today", "blocks": blocks, **fields}
    resp = client.post("/issues", json=body, headers=editor)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def check(client: TestClient, editor: dict[str, str], issue_id: int, links: bool = False) -> Any:
    """GET the preflight as JSON."""
    resp = client.get(f"/issues/{issue_id}/check", params={"links": links}, headers=editor)
    assert resp.status_code == 200, resp.text
    return resp.json()


def by_code(report: Any, code: str) -> list[dict[str, Any]]:
    """Return the items of one code."""
    return [item for item in report["items"] if item["code"] == code]


def test_the_size_meter_measures_the_html(client: TestClient, editor: dict[str, str]) -> None:
    issue_id = create(client, editor, [{"type": "markdown", "body": "Short."}])
    size = check(client, editor, issue_id)["size"]
    html = client.get(f"/issues/{issue_id}/preview", headers=editor).text
    assert size["clip_bytes"] == 102 * 1024
    # The preview has real tokens where the check measures placeholders: about the same size.
    assert abs(size["bytes"] - len(html.encode())) < 2000
    assert size["percent"] == round(100 * size["bytes"] / (102 * 1024), 1)


def test_subject_length(client: TestClient, editor: dict[str, str]) -> None:
    blocks = [{"type": "markdown", "body": "Hello."}]
    short = check(client, editor, create(client, editor, blocks, subject="Hi"))
    [item] = by_code(short, "subject_short")
    assert item["level"] == "warning" and item["line"] == 2  # the front matter's subject line
    long = check(client, editor, create(client, editor, blocks, subject="x" * 79))
    assert by_code(long, "subject_long")
    fine = check(client, editor, create(client, editor, blocks, subject="x" * 78))
    assert not by_code(fine, "subject_long") and not by_code(fine, "subject_short")


def test_vague_link_text_and_bare_urls_are_named_with_block_and_line(
    client: TestClient, editor: dict[str, str]
) -> None:
    blocks = [
        {"type": "lead", "title": "Lead", "body": "A [good name](https://example.org/a)."},
        {"type": "markdown", "body": "First line.\n\nTo know more [click here](https://example.org/b)."},
        {"type": "links", "title": "L", "items": [{"title": "https://example.org/c", "url": "https://example.org/c"}]},
        {"type": "markdown", "body": "Or [Read more…](https://example.org/d)"},
    ]  # fmt: skip
    issue_id = create(client, editor, blocks)
    items = by_code(check(client, editor, issue_id), "vague_link_text")
    assert [(i["block"], i["level"]) for i in items] == [
        (2, "warning"),
        (3, "warning"),
        (4, "warning"),
    ]
    markdown = client.get(f"/issues/{issue_id}/markdown", headers=editor).text.split("\n")
    assert "[click here]" in markdown[items[0]["line"] - 1]
    assert "example.org/c" in markdown[items[1]["line"] - 1]
    assert "bare web address" in items[1]["message"]


def test_an_image_without_alt_text_fails_the_check_and_the_send(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    add_subscribers(ctx, 2)
    blocks = [
        {"type": "markdown", "body": "Look: ![](https://example.org/chart.png)"},
        {"type": "image", "url": "https://example.org/cat.jpg"},
        {"type": "markdown", "body": "![DESCRIBE THIS IMAGE](https://example.org/dog.jpg)"},
        {"type": "image", "url": "https://example.org/ok.jpg", "alt": "An owl"},
    ]
    issue_id = create(client, editor, blocks)
    report = check(client, editor, issue_id)
    items = by_code(report, "image_no_alt")
    assert [(i["block"], i["level"]) for i in items] == [(1, "error"), (2, "error"), (3, "error")]
    assert report["ok"] is False
    markdown = client.get(f"/issues/{issue_id}/markdown", headers=editor).text.split("\n")
    assert "chart.png" in markdown[items[0]["line"] - 1]
    assert "cat.jpg" in markdown[items[1]["line"] - 1]

    resp = client.post(f"/issues/{issue_id}/send", headers=editor)
    assert resp.status_code == 422
    assert "no alt text" in resp.json()["detail"]


def test_an_uploaded_image_over_1_mb_is_a_warning(
    client: TestClient, editor: dict[str, str]
) -> None:
    noise = Image.frombytes("RGB", (1200, 400), os.urandom(1200 * 400 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG")
    up = client.post(
        "/media", files={"file": ("n.png", out.getvalue(), "image/png")}, headers=editor
    )
    assert up.status_code == 201 and up.json()["bytes"] > 1024 * 1024
    small = client.post(
        "/media", files={"file": ("s.png", _png(20, 20), "image/png")}, headers=editor
    ).json()
    blocks = [
        {"type": "image", "url": up.json()["url"], "alt": "Static"},
        {"type": "image", "url": small["url"], "alt": "A dot"},
    ]
    items = by_code(check(client, editor, create(client, editor, blocks)), "image_heavy")
    assert [(i["block"], i["level"]) for i in items] == [(1, "warning")]
    assert "MB" in items[0]["message"]


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


def test_the_text_part_must_not_be_empty(client: TestClient, editor: dict[str, str]) -> None:
    empty = create(client, editor, [{"type": "masthead", "date": "Tuesday"}])
    [item] = by_code(check(client, editor, empty), "text_part_empty")
    assert item["level"] == "error"
    fine = create(client, editor, [{"type": "markdown", "body": "Words."}])
    assert not by_code(check(client, editor, fine), "text_part_empty")


def test_links_that_fail_are_warnings_with_their_block(
    client: TestClient, editor: dict[str, str], open_ctx: Context, site: Site
) -> None:
    u = site.url
    blocks = [
        {"type": "markdown", "body": f"[Fine]({u}/ok) and [the old page]({u}/missing)."},
        {"type": "links", "title": "More", "items": [
            {"title": "A page that fails", "url": f"{u}/broken"},
            {"title": "No HEAD here", "url": f"{u}/nohead"},
            {"title": "A moved page", "url": f"{u}/moved"},
        ]},
        {"type": "image", "url": f"{u}/big.jpg", "alt": "A big picture"},
    ]  # fmt: skip
    issue_id = create(client, editor, blocks)

    report = check(client, editor, issue_id, links=True)

    broken = {i["message"].split()[2]: i for i in by_code(report, "link_broken")}
    assert set(broken) == {f"{u}/missing", f"{u}/broken", f"{u}/moved"}
    assert broken[f"{u}/missing"]["block"] == 1
    assert "404" in broken[f"{u}/moved"]["message"]  # followed to where it leads
    assert all(i["level"] == "warning" for i in report["items"] if i["code"].startswith("link"))
    assert ("GET", "/nohead") in site.hits  # HEAD said 405: asked again with GET
    assert [i["block"] for i in by_code(report, "image_heavy")] == [3]
    # Every finding about a URL points at the line that holds it.
    markdown = client.get(f"/issues/{issue_id}/markdown", headers=editor).text.split("\n")
    for item in report["items"]:
        if item["code"] in ("insecure_link", "link_broken"):
            quoted = re.search(r"https?://[^\s']+", item["message"])
            assert quoted and quoted.group(0) in markdown[item["line"] - 1], item
    assert report["links_checked"] is True and report["ok"] is True

    # Cached: a second check asks the site nothing.
    before = len(site.hits)
    again = check(client, editor, issue_id, links=True)
    assert len(site.hits) == before
    assert again["items"] == report["items"]
    # And a send does not wait for links (the gate runs only the cheap rules).
    assert client.post(f"/issues/{issue_id}/send", headers=editor).status_code == 202


def test_private_addresses_are_not_fetched_without_the_flag(
    client: TestClient, editor: dict[str, str], closed_ctx: Context, site: Site
) -> None:
    issue_id = create(client, editor, [{"type": "markdown", "body": f"[Site]({site.url}/ok)"}])
    [item] = by_code(check(client, editor, issue_id, links=True), "link_not_checked")
    assert "non-public address" in item["message"]
    assert "MORNINGPOST_LINK_CHECK_ALLOW_PRIVATE=true" in item["message"]
    assert "webhook" not in item["message"]
    assert site.hits == []


async def test_a_link_that_never_answers_times_out(site: Site) -> None:
    checker = LinkChecker(
        timeout=0.5, concurrency=2, cache_seconds=60, allow_private=True, resolver=resolver
    )
    result = await checker.check([f"{site.url}/slow"])
    status = result[f"{site.url}/slow"]
    assert status.status is None and "no answer within 0.5 s" in (status.error or "")


def test_a_slow_link_check_does_not_block_other_requests(
    client: TestClient, editor: dict[str, str], open_ctx: Context, site: Site
) -> None:
    issue_id = create(client, editor, [{"type": "markdown", "body": f"[Slow]({site.url}/slow)"}])
    answers: list[Any] = []
    worker = threading.Thread(target=lambda: answers.append(check(client, editor, issue_id, True)))
    worker.start()
    try:
        assert site.slow_arrived.wait(10)
        # The check is waiting on the slow site; the app still answers meanwhile.
        assert client.get("/healthz").status_code == 200
        assert worker.is_alive()
    finally:
        site.release.set()
        worker.join(10)
    assert answers and not by_code(answers[0], "link_no_answer")


def test_the_console_shows_the_checklist_beside_the_preview(
    client: TestClient, editor: dict[str, str], open_ctx: Context, site: Site
) -> None:
    add_account(open_ctx)
    sign_in(client)
    blocks = [
        {
            "type": "markdown",
            "body": f"[click here]({site.url}/missing) ![](https://example.org/x.png)",
        }
    ]
    issue_id = create(client, editor, blocks, subject="Hi")
    page = client.get(f"/editor/issues/{issue_id}/preview")
    assert page.status_code == 200
    html = page.text
    assert 'class="card preflight"' in html
    assert '<meter id="html-size"' in html
    assert 'data-rule="images"' in html and "check-error" in html
    assert "has no alt text" in html and "click here" in html
    assert "not fetched yet" in html and site.hits == []

    checked = client.get(f"/editor/issues/{issue_id}/preview", params={"links": 1}).text
    assert "answers 404" in checked
    # The issue page's pre-send check carries the new rules too, and blocks the send.
    issue_page = client.get(f"/editor/issues/{issue_id}").text
    assert "has no alt text" in issue_page and "Fix the errors above first" in issue_page


def test_the_allow_private_flag_reaches_the_checker(ctx: Context) -> None:
    assert ctx.links.allow_private is False
    ctx.settings = ctx.settings.model_copy(update={"link_check_allow_private": True})
    ctx._links = None
    assert ctx.links.allow_private is True


async def test_a_whole_check_is_bounded_and_shares_one_gate(site: Site) -> None:
    # One link at a time, each allowed 0.4 s, the whole check 1.2 s: of five slow links,
    # three time out in turn and the two still waiting are reported as not checked.
    checker = LinkChecker(
        timeout=0.4, concurrency=1, cache_seconds=60, allow_private=True, resolver=resolver
    )
    urls = [f"{site.url}/slow?{n}" for n in range(5)]
    result = await checker.check(urls)
    errors = [result[u].error or "" for u in urls]
    assert sum("no answer within 0.4 s" in e for e in errors) >= 2
    assert sum("ran out of time" in e for e in errors) >= 1
    assert all(result[u].status is None for u in urls)
    # Links that ran out of time are asked again next time (not cached as failures).
    late = [u for u in urls if "ran out of time" in (result[u].error or "")]
    assert all(u not in checker._cache for u in late)


def test_images_on_this_server_are_not_judged_as_outside_links(
    client: TestClient, editor: dict[str, str]
) -> None:
    # BASE_URL is http://testserver here (no dot, plain HTTP), as a development one may be.
    up = client.post("/media", files={"file": ("s.png", _png(20, 20), "image/png")}, headers=editor)
    blocks = [{"type": "image", "url": up.json()["url"], "alt": "A dot"}]
    report = check(client, editor, create(client, editor, blocks))
    assert not [i for i in report["items"] if i["code"] in ("malformed_link", "insecure_link")]
    assert report["ok"] is True
