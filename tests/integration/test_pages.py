"""Public pages: the form's markup, the QR code, the archive, health and the error pages."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.context import Context, build_context
from app.db import make_engine, session_scope
from app.main import create_app
from app.models import Issue, IssueStatus, Subscriber, utcnow
from app.rendering.blocks import parse_blocks
from tests.helpers import SIMPLE_BLOCKS


def test_subscribe_form_is_accessible(client: TestClient) -> None:
    r = client.get("/subscribe")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<html lang="en">' in html and 'name="viewport"' in html
    assert '<label for="email">' in html and 'id="email" name="email" type="email"' in html
    assert '<label for="name">' in html
    assert 'method="post" action="/subscribe"' in html
    # The honeypot: hidden from people in every way, still a plain input for bots.
    hp = html[html.index('<div class="hp"') :]
    hp = hp[: hp.index("</div>")]
    assert 'aria-hidden="true"' in hp
    assert 'name="website"' in hp and 'tabindex="-1"' in hp and 'autocomplete="off"' in hp
    assert '<img src="/subscribe/qr.png"' in html and 'alt="QR code' in html
    assert '<link rel="stylesheet" href="/static/style.css">' in html
    # Works without JavaScript; the one script (the time zone field) is a file, never inline.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/timezone.js" defer>']


def test_stylesheet_is_served(client: TestClient) -> None:
    r = client.get("/static/style.css")
    assert r.status_code == 200
    assert "prefers-color-scheme: dark" in r.text and ":focus-visible" in r.text
    assert ".hp" in r.text


def test_qr_code_png(client: TestClient) -> None:
    r = client.get("/subscribe/qr.png")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert "max-age" in r.headers["cache-control"]


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_healthz_503_when_the_database_is_gone(settings: Settings, tmp_path: Path) -> None:
    # A directory is not a database file: every connection attempt fails.
    broken = make_engine(f"sqlite:///{tmp_path}")
    ctx = build_context(settings, engine=broken)
    with TestClient(create_app(settings, context=ctx)) as c:
        r = c.get("/healthz")
    broken.dispose()
    assert r.status_code == 503 and r.json()["status"] != "ok"


def _issue(ctx: Context, slug: str, status: str, days_ago: int) -> None:
    with session_scope(ctx.sessions) as s:
        started = utcnow() - timedelta(days=days_ago)
        s.add(
            Issue(
                slug=slug,
                subject=f"Subject {slug}",
                preheader=f"Preheader {slug}",
                blocks=parse_blocks(SIMPLE_BLOCKS),  # as the issues API stores them
                status=status,
                started_at=None if status == IssueStatus.draft else started,
                finished_at=started if status == IssueStatus.sent else None,
            )
        )


def test_archive_lists_published_issues_newest_first(client: TestClient, ctx: Context) -> None:
    _issue(ctx, "older", IssueStatus.sent, 3)
    _issue(ctx, "newer", IssueStatus.sent, 1)
    _issue(ctx, "going-out", IssueStatus.sending, 0)
    _issue(ctx, "secret-draft", IssueStatus.draft, 0)
    _issue(ctx, "stopped", IssueStatus.cancelled, 2)
    r = client.get("/archive")
    assert r.status_code == 200
    html = r.text
    positions = [html.index(f'href="/archive/{slug}"') for slug in ("going-out", "newer", "older")]
    assert positions == sorted(positions)
    assert "secret-draft" not in html and "stopped" not in html


def test_archive_empty(client: TestClient) -> None:
    r = client.get("/archive")
    assert r.status_code == 200 and "No issue has been sent yet" in r.text


def test_archive_issue_web_version(client: TestClient, ctx: Context) -> None:
    _issue(ctx, "hello", IssueStatus.sent, 1)
    r = client.get("/archive/hello")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Hello readers" in r.text
    assert "/unsubscribe/" not in r.text  # the public copy carries no subscriber token


def test_archive_hides_drafts_and_unknown_slugs(client: TestClient, ctx: Context) -> None:
    _issue(ctx, "draft", IssueStatus.draft, 0)
    for path in ("/archive/draft", "/archive/nothing-here"):
        r = client.get(path, headers={"accept": "text/html"})
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert "Page not found" in r.text


def test_unknown_page_is_a_friendly_404(client: TestClient) -> None:
    r = client.get("/no/such/page", headers={"accept": "text/html"})
    assert r.status_code == 404 and "Page not found" in r.text and 'href="/subscribe"' in r.text


def test_bad_link_page_is_400_html(client: TestClient) -> None:
    r = client.get("/unsubscribe/nonsense", headers={"accept": "text/html"})
    assert r.status_code == 400 and "That link doesn" in r.text


def test_pages_render(client: TestClient, ctx: Context) -> None:
    client.post("/subscribe", json={"email": "page@example.org"})
    from_db = ctx.tokens.confirm_token(1, "page@example.org")
    for path in (f"/confirm/{from_db}", f"/unsubscribe/{ctx.tokens.unsubscribe_token(1)}"):
        r = client.get(path)
        assert r.status_code == 200
        assert "<form" in r.text and "<button" in r.text
    with ctx.sessions() as session:
        nonce = session.get_one(Subscriber, 1).token_nonce
    r = client.get(f"/preferences/{ctx.tokens.preferences_token(1, nonce)}")
    assert r.status_code == 200 and '<label for="pause_weeks">' in r.text
