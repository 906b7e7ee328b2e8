"""What the public pages say besides their body: HEAD, Allow, titles, and who may keep a copy.

Uptime monitors and feed checkers send HEAD; a 405 names the methods that work; a subject
written with `{{ newsletter }}` reads as the newsletter's name wherever it is listed; a control
character cannot get into a newsletter's name (it would break the feed); and the pages a
reader's own link opens are kept by no cache.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from app.context import Context
from app.db import session_scope
from app.models import Issue, IssueStatus, Newsletter, utcnow
from app.rendering.blocks import parse_blocks
from tests.helpers import SIMPLE_BLOCKS, add_subscribers, nonce_of

PAGES = ("/", "/archive", "/archive/feed.xml", "/archive/hello", "/subscribe", "/healthz")


def _publish(ctx: Context, subject: str = "First subject", preheader: str = "") -> None:
    with session_scope(ctx.sessions) as s:
        started = utcnow() - timedelta(days=1)
        s.add(
            Issue(
                slug="hello",
                subject=subject,
                preheader=preheader,
                blocks=parse_blocks(SIMPLE_BLOCKS),
                status=IssueStatus.sent,
                started_at=started,
                finished_at=started,
            )
        )


def test_head_answers_like_get_without_a_body(client: TestClient, ctx: Context) -> None:
    _publish(ctx)
    for path in PAGES:
        got = client.get(path)
        head = client.head(path)
        assert head.status_code == 200, (path, head.text)
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert head.headers.get("etag") == got.headers.get("etag"), path
        if "etag" in got.headers:  # a monitor's conditional HEAD: 304 like a GET
            again = client.head(path, headers={"if-none-match": got.headers["etag"]})
            assert again.status_code == 304, path
    # HEAD stays out of the API docs, which would only repeat each GET.
    schema = client.get("/openapi.json").json()
    assert "head" not in schema["paths"]["/archive"]
    assert "get" in schema["paths"]["/archive"]


def test_a_405_names_the_methods_that_work(client: TestClient) -> None:
    resp = client.delete("/archive")
    assert resp.status_code == 405
    # GET, which implies HEAD (RFC 9110 9.3.2: a server with GET answers HEAD too).
    assert "GET" in {m.strip() for m in resp.headers["allow"].split(",")}


def test_a_newsletter_tag_in_a_subject_reads_as_its_name_where_issues_are_listed(
    client: TestClient, ctx: Context
) -> None:
    _publish(ctx, subject="Today in {{ newsletter }}", preheader="Fresh from {{ newsletter }}")
    name = ctx.settings.newsletter_name
    for path in ("/", "/archive", "/archive/feed.xml", "/archive/hello"):
        text = client.get(path).text
        assert "{{" not in text, path
        assert f"Today in {name}" in text, path


def test_a_control_character_in_a_newsletter_field_is_refused(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    for field in ("name", "tagline"):
        resp = client.patch("/newsletters/1", json={field: "tag\u0002line"}, headers=editor)
        assert resp.status_code == 422, resp.text
        assert "control characters" in resp.json()["detail"]
    # One stored before this check (by an older version) no longer breaks the feed.
    with session_scope(ctx.sessions) as s:
        s.execute(update(Newsletter).where(Newsletter.id == 1).values(tagline="tag\u0002line"))
    _publish(ctx)
    feed = client.get("/archive/feed.xml")
    assert feed.status_code == 200, feed.text
    assert "<subtitle>tagline</subtitle>" in feed.text


def test_pages_opened_by_a_readers_own_link_are_kept_by_no_cache(
    client: TestClient, ctx: Context
) -> None:
    (reader,) = add_subscribers(ctx, 1)
    nonce = nonce_of(ctx, reader)
    for path in (
        f"/preferences/{ctx.tokens.preferences_token(reader, nonce)}",
        f"/unsubscribe/{ctx.tokens.unsubscribe_token(reader, nonce)}",
        "/preferences/not-a-token",
    ):
        resp = client.get(path)
        assert resp.headers["cache-control"] == "private, no-store", (path, resp.status_code)
    # The public pages keep their own, shareable caching.
    assert "public" in client.get("/subscribe").headers["cache-control"]
