"""The reader's side: home page, archive with dates and excerpts, the issue page, the Atom feed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import pytest
from fastapi.testclient import TestClient

from app.context import Context
from app.db import session_scope
from app.demo import sample_issue_payload
from app.issues.summary import excerpt, parse_day
from app.models import Issue, IssueStatus, Subscriber, utcnow
from app.rendering.blocks import parse_blocks
from app.tokens import hash_secret
from tests.helpers import nonce_of

SENT_AT = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)  # sent the day after the masthead's date


def add_issue(
    ctx: Context,
    slug: str,
    status: str,
    *,
    blocks: list[dict[str, Any]] | None = None,
    started: datetime | None = SENT_AT,
    preheader: str = "",
) -> None:
    """Store an issue in a given state."""
    raw = blocks or [
        {"type": "markdown", "body": f"Body of **{slug}** with a [link](https://x.org)."}
    ]
    with session_scope(ctx.sessions) as s:
        s.add(
            Issue(
                slug=slug,
                subject=f"Subject {slug}",
                preheader=preheader,
                blocks=parse_blocks(raw),
                status=status,
                started_at=started,
            )
        )


@pytest.fixture
def sample(ctx: Context) -> dict[str, Any]:
    """Store the shipped sample issue as sent and return its payload."""
    payload = sample_issue_payload()
    add_issue(
        ctx,
        payload["slug"],
        IssueStatus.sent,
        blocks=payload["blocks"],
        preheader=payload["preheader"],
    )
    return payload


def test_home_page_has_name_tagline_form_and_latest_issues(
    client: TestClient, ctx: Context, sample: dict[str, Any]
) -> None:
    add_issue(ctx, "secret-draft", IssueStatus.draft, started=None)
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    assert "The AI Morning Post" in html and ctx.settings.newsletter_tagline in html
    assert 'action="/subscribe"' in html and 'name="timezone"' in html and 'name="website"' in html
    assert f'href="/archive/{sample["slug"]}"' in html
    assert "Tuesday, 3 March 2026" in html  # the masthead's date, not the send date
    assert "From Arabic speech recognition" in html  # the lead's summary as excerpt
    assert "secret-draft" not in html
    assert '<link rel="alternate" type="application/atom+xml"' in html


def test_archive_shows_the_issue_date_and_an_excerpt(
    client: TestClient, ctx: Context, sample: dict[str, Any]
) -> None:
    add_issue(ctx, "undated", IssueStatus.sent, started=SENT_AT - timedelta(days=7))
    html = client.get("/archive").text
    assert '<time datetime="2026-03-03">Tuesday, 3 March 2026</time>' in html
    # Without a masthead date the send date is shown.
    assert '<time datetime="2026-02-25">Wednesday, 25 February 2026</time>' in html
    assert "Body of undated with a link." in html  # Markdown flattened to text
    assert "4 March" not in html


def test_issue_page_has_header_way_back_signup_meta_and_a_real_qr(
    client: TestClient, ctx: Context, sample: dict[str, Any]
) -> None:
    html = client.get(f"/archive/{sample['slug']}").text
    assert 'class="mps-head"' in html and 'href="/archive"' in html and 'href="/"' in html
    assert re.search(r'<form class="mps-form" method="post" action="/subscribe"', html)
    for meta in (
        'property="og:title"',
        'property="og:description"',
        'property="og:url"',
        'name="twitter:card"',
        'name="twitter:title"',
        'name="twitter:description"',
    ):
        assert meta in html, meta
    assert "cid:" not in html
    # One call to subscribe: the page's form, not also the issue's block, a header button
    # and a footer line (issue 22).
    assert html.count('action="/subscribe"') == 1 and 'href="/subscribe"' not in html
    assert "Subscribe now" not in html and "Scan to subscribe" not in html
    assert '<link rel="alternate" type="application/atom+xml" href="/archive/feed.xml">' in html
    assert client.get("/static/issue.css").status_code == 200


def test_editor_preview_shows_the_qr_image(
    client: TestClient, editor: dict[str, str], sample: dict[str, Any]
) -> None:
    made = client.post("/issues", json={**sample, "slug": "preview-me"}, headers=editor).json()
    html = client.get(f"/issues/{made['id']}/preview", headers=editor).text
    assert "cid:" not in html and 'src="/subscribe/qr.png"' in html
    assert client.get("/subscribe/qr.png").status_code == 200


def test_feed_lists_published_issues_with_their_own_date(
    client: TestClient, ctx: Context, sample: dict[str, Any]
) -> None:
    add_issue(ctx, "undated", IssueStatus.sent, started=SENT_AT - timedelta(days=7))
    add_issue(ctx, "draft-one", IssueStatus.draft, started=None)
    add_issue(ctx, "later", IssueStatus.scheduled, started=None)
    add_issue(ctx, "stopped", IssueStatus.cancelled)
    r = client.get("/archive/feed.xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(r.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10" and feed.feed.title == "The AI Morning Post"
    links = [e.link for e in feed.entries]
    assert links == [
        f"http://testserver/archive/{sample['slug']}",
        "http://testserver/archive/undated",
    ]
    dates = [e.published_parsed[:3] for e in feed.entries]
    assert dates == [(2026, 3, 3), (2026, 2, 25)]
    assert feed.entries[0].summary.startswith("From Arabic speech recognition")


def test_unsubscribe_page_masks_the_address_and_offers_a_pause(
    client: TestClient, ctx: Context
) -> None:
    with session_scope(ctx.sessions) as s:
        row = Subscriber(
            email="jane@example.org",
            email_hash=hash_secret("jane@example.org"),
            status="active",
            confirmed_at=utcnow(),
        )
        s.add(row)
        s.flush()
        sub_id = row.id
    html = client.get(
        f"/unsubscribe/{ctx.tokens.unsubscribe_token(sub_id, nonce_of(ctx, sub_id))}"
    ).text
    assert "j•••@example.org" in html and "jane@" not in html
    prefs = ctx.tokens.preferences_token(sub_id, nonce_of(ctx, sub_id))
    pause = f'href="/preferences/{prefs}#pause_weeks"'
    assert pause in html and "Pause instead" in html
    # An erased reader's old link still shows the page, without an address or a pause.
    erased = client.get(f"/unsubscribe/{ctx.tokens.unsubscribe_token(999)}").text
    assert "•••" not in erased and "Pause instead" not in erased


def test_date_and_excerpt_helpers() -> None:
    assert parse_day("Tuesday, 3 March 2026") == datetime(2026, 3, 3).date()
    assert parse_day("March 3rd, 2026") == datetime(2026, 3, 3).date()
    assert parse_day("Spring edition") is None
    long = "word " * 100
    cut = excerpt([{"type": "markdown", "body": long}])
    assert len(cut) <= 221 and cut.endswith("…")
