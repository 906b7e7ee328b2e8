"""Each newsletter's public pages (/n/<slug>): only its own issues, its own links, its own name.

Also: the default newsletter's first URLs show only its issues; a change of a newsletter's row
shows on the pages (through the page cache, across processes) and in the next confirmation
and welcome emails.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from app.config import Settings
from app.context import Context, build_context
from app.db import make_engine, session_scope
from app.main import create_app
from app.models import (
    DEFAULT_NEWSLETTER_ID,
    Issue,
    IssueStatus,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from app.rendering.blocks import parse_blocks
from tests.helpers import SIMPLE_BLOCKS, add_subscribers, nonce_of, run_worker
from tests.smtp_server import SMTPTestServer

HTML = {"accept": "text/html"}
ATOM = "{http://www.w3.org/2005/Atom}"
HOSTILE = "<script>alert(1)</script> & Co"


def _newsletter(client: TestClient, editor: dict[str, str], slug: str, **fields: Any) -> int:
    body = {"slug": slug, "name": slug.title(), **fields}
    resp = client.post("/newsletters", json=body, headers=editor)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _publish(
    ctx: Context,
    slug: str,
    newsletter_id: int = DEFAULT_NEWSLETTER_ID,
    *,
    subject: str | None = None,
    status: IssueStatus = IssueStatus.sent,
    days_ago: int = 1,
) -> int:
    with session_scope(ctx.sessions) as s:
        started = utcnow() - timedelta(days=days_ago)
        issue = Issue(
            slug=slug,
            subject=subject or f"Subject of {slug}",
            preheader="",
            blocks=parse_blocks(SIMPLE_BLOCKS),
            status=status,
            started_at=started if status != IssueStatus.draft else None,
            finished_at=started if status == IssueStatus.sent else None,
            newsletter_id=newsletter_id,
        )
        s.add(issue)
        s.flush()
        return issue.id


@pytest.fixture
def two(client: TestClient, editor: dict[str, str], ctx: Context) -> int:
    """A second newsletter, robots, with issues of its own beside the default's."""
    robots = _newsletter(
        client,
        editor,
        "robots",
        tagline="Machines, weekly",
        postal_address="Robots Ltd, 2 Gear Lane, Leeds",
    )
    _publish(ctx, "home-one", days_ago=3)
    _publish(ctx, "home-two", days_ago=2)
    _publish(ctx, "bot-one", robots, days_ago=2)
    _publish(ctx, "bot-two", robots, days_ago=1)
    _publish(ctx, "bot-draft", robots, status=IssueStatus.draft)
    return robots


# Each newsletter its own issues -------------------------------------------------------------


def test_each_newsletters_pages_show_only_its_own_issues(client: TestClient, two: int) -> None:
    own = {
        "default": (("/", "/archive", "/archive/feed.xml"), ("home-one", "home-two")),
        "robots": (
            ("/n/robots", "/n/robots/archive", "/n/robots/feed.xml"),
            ("bot-one", "bot-two"),
        ),
    }
    everyone = {"home-one", "home-two", "bot-one", "bot-two"}
    for paths, slugs in own.values():
        for path in paths:
            r = client.get(path)
            assert r.status_code == 200, path
            for slug in slugs:
                assert f"Subject of {slug}" in r.text, (path, slug)
            for other in everyone - set(slugs):
                assert f"Subject of {other}" not in r.text, (path, other)
            assert "bot-draft" not in r.text
    for slug in ("bot-one", "bot-two"):
        page = client.get(f"/n/robots/archive/{slug}")
        assert page.status_code == 200 and f"Subject of {slug}" in page.text
    assert client.get("/archive/home-one").status_code == 200
    # The default newsletter answers under its slug too, with links to its first URLs.
    by_slug = client.get("/n/default/archive")
    assert by_slug.status_code == 200 and 'href="/archive/home-one"' in by_slug.text
    assert "Subject of bot-one" not in by_slug.text


def test_links_in_a_newsletters_pages_point_at_its_own_urls(client: TestClient, two: int) -> None:
    home = client.get("/n/robots").text
    assert "<title>Robots · Machines, weekly</title>" in home
    assert 'href="/n/robots/archive/bot-two"' in home and 'href="/n/robots/archive"' in home
    assert 'action="/n/robots/subscribe"' in home
    assert (
        '<link rel="alternate" type="application/atom+xml" title="Robots"'
        ' href="/n/robots/feed.xml">' in home
    )
    assert 'href="/archive' not in home and 'action="/subscribe"' not in home
    assert "Robots Ltd, 2 Gear Lane, Leeds" in home
    listing = client.get("/n/robots/archive").text
    assert 'href="/n/robots/archive/bot-one"' in listing and 'href="/archive' not in listing
    issue = client.get("/n/robots/archive/bot-one").text
    assert '<link rel="alternate" type="application/atom+xml" href="/n/robots/feed.xml">' in issue
    assert 'href="/n/robots/archive"' in issue and 'action="/n/robots/subscribe"' in issue
    assert 'href="http://testserver/n/robots/archive/bot-one"' in issue  # canonical
    assert 'content="Robots"' in issue  # og:site_name
    assert 'href="/archive' not in issue
    sign_up = client.get("/n/robots/subscribe").text
    assert (
        'action="/n/robots/subscribe"' in sign_up and 'src="/n/robots/subscribe/qr.png"' in sign_up
    )
    qr = client.get("/n/robots/subscribe/qr.png")
    assert qr.status_code == 200 and qr.content.startswith(b"\x89PNG")
    assert qr.content != client.get("/subscribe/qr.png").content  # a code of its own page
    # The default newsletter's pages keep their first URLs.
    default_home = client.get("/").text
    assert 'href="/archive/home-two"' in default_home and 'action="/subscribe"' in default_home
    assert "/n/" not in default_home


def test_a_sign_up_from_a_newsletters_page_takes_that_newsletter(
    client: TestClient, two: int, ctx: Context
) -> None:
    r = client.post("/n/robots/subscribe", data={"email": "gear@example.org"}, headers=HTML)
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert 'href="/n/robots/subscribe"' in r.text  # "sign up again" on its own page
    with session_scope(ctx.sessions) as s:
        sid = s.scalars(select(Subscriber.id).where(Subscriber.email == "gear@example.org")).one()
        taken = s.execute(
            select(Subscription.newsletter_id, Subscription.status).where(
                Subscription.subscriber_id == sid
            )
        ).all()
    assert [(n, str(st)) for n, st in taken] == [(two, SubscriptionStatus.pending)]
    nowhere = client.post("/n/nope/subscribe", data={"email": "x@example.org"}, headers=HTML)
    assert nowhere.status_code == 404


# 404s and the old links ------------------------------------------------------------------------


def test_unknown_newsletters_other_newsletters_issues_and_unsent_ones_are_404(
    client: TestClient, two: int
) -> None:
    for path in (
        "/n/nope",
        "/n/nope/archive",
        "/n/nope/feed.xml",
        "/n/nope/archive/bot-one",
        "/n/nope/subscribe",
        "/n/nope/subscribe/qr.png",
        "/n/robots/archive/home-one",  # the default newsletter's issue
        "/n/default/archive/bot-one",  # robots' issue under the default's slug
        "/n/robots/archive/bot-draft",  # not sent
        "/n/robots/archive/nothing-here",
        "/n/Bad%20Slug",
    ):
        r = client.get(path, headers=HTML)
        assert r.status_code == 404, path
        assert "Page not found" in r.text, path
        assert "etag" not in r.headers, path


def test_an_old_archive_link_to_another_newsletters_issue_moves_to_its_page(
    client: TestClient, two: int
) -> None:
    """Emails sent before newsletters had pages linked /archive/<slug>: those links keep working."""
    moved = client.get("/archive/bot-one", follow_redirects=False)
    assert moved.status_code == 301
    assert moved.headers["location"] == "/n/robots/archive/bot-one"
    assert client.get("/archive/bot-draft", headers=HTML).status_code == 404


# The feed ------------------------------------------------------------------------------------


def test_a_newsletters_feed_is_atom_with_its_own_entries(client: TestClient, two: int) -> None:
    r = client.get("/n/robots/feed.xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(r.content)
    assert root.tag == f"{ATOM}feed"
    assert root.findtext(f"{ATOM}title") == "Robots"
    assert root.findtext(f"{ATOM}subtitle") == "Machines, weekly"
    assert root.findtext(f"{ATOM}id") == "http://testserver/n/robots/archive"
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links == {
        "alternate": "http://testserver/n/robots",
        "self": "http://testserver/n/robots/feed.xml",
    }
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == [
        "Subject of bot-two",
        "Subject of bot-one",
    ]
    for entry, slug in zip(entries, ("bot-two", "bot-one"), strict=True):
        url = f"http://testserver/n/robots/archive/{slug}"
        assert entry.findtext(f"{ATOM}id") == url
        assert entry.find(f"{ATOM}link").get("href") == url  # type: ignore[union-attr]
        assert entry.findtext(f"{ATOM}updated")
    default = ET.fromstring(client.get("/archive/feed.xml").content)
    assert [e.findtext(f"{ATOM}id") for e in default.findall(f"{ATOM}entry")] == [
        "http://testserver/archive/home-two",
        "http://testserver/archive/home-one",
    ]


# Escaping ------------------------------------------------------------------------------------


def test_a_newsletter_name_with_markup_is_escaped_everywhere(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    nid = _newsletter(client, editor, "risky", name=HOSTILE, tagline=f"Tag {HOSTILE}")
    _publish(ctx, "risky-one", nid)
    for path in (
        "/n/risky",
        "/n/risky/archive",
        "/n/risky/archive/risky-one",
        "/n/risky/subscribe",
    ):
        page = client.get(path).text
        assert "<script>alert" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page, path
    feed = ET.fromstring(client.get("/n/risky/feed.xml").content)
    assert feed.findtext(f"{ATOM}title") == HOSTILE  # XML-escaped, read back as written


# Settings in the database, shown on pages and in emails ----------------------------------------


def test_a_renamed_default_newsletter_shows_on_its_pages_and_in_the_next_emails(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    _publish(ctx, "home-one")
    for path in ("/", "/archive", "/archive/home-one", "/subscribe"):
        assert "The AI Morning Post" in client.get(path).text
    changed = client.patch(
        f"/newsletters/{DEFAULT_NEWSLETTER_ID}",
        json={
            "name": "The Evening Post",
            "tagline": "Dusk edition",
            "from": "Evening Desk <evening@morningpost.test>",
            "reply_to": "letters@morningpost.test",
            "postal_address": "1 Dusk Road, Bath",
        },
        headers=editor,
    )
    assert changed.status_code == 200, changed.text
    for path in ("/", "/archive", "/archive/home-one", "/subscribe"):
        page = client.get(path).text
        assert "The Evening Post" in page and "The AI Morning Post" not in page, path
    assert "Dusk edition" in client.get("/").text
    assert "1 Dusk Road, Bath" in client.get("/archive").text
    feed = ET.fromstring(client.get("/archive/feed.xml").content)
    assert feed.findtext(f"{ATOM}title") == "The Evening Post"

    assert (
        client.post("/subscribe", data={"email": "eve@example.org"}, headers=HTML).status_code
        == 200
    )
    run_worker(ctx)
    (confirmation,) = smtp_server.handler.wait_for(1)
    msg = confirmation.message()
    assert str(msg["Subject"]) == "Confirm your subscription to The Evening Post"
    assert str(msg["From"]) == "Evening Desk <evening@morningpost.test>"
    assert str(msg["Reply-To"]) == "letters@morningpost.test"
    body = msg.get_body(("plain",))
    assert body is not None and "1 Dusk Road, Bath" in body.get_content()

    with session_scope(ctx.sessions) as s:
        row = s.scalars(select(Subscriber).where(Subscriber.email == "eve@example.org")).one()
        token = ctx.tokens.confirm_token(row.id, row.email)
    assert "The Evening Post" in client.get(f"/confirm/{token}").text
    confirmed = client.post(f"/confirm/{token}")
    assert confirmed.status_code == 200 and "The Evening Post" in confirmed.text
    smtp_server.handler.reset()
    run_worker(ctx)
    (welcome,) = smtp_server.handler.wait_for(1)
    hello = welcome.message()
    assert str(hello["Subject"]) == "Welcome to The Evening Post"
    assert str(hello["From"]) == "Evening Desk <evening@morningpost.test>"
    text_part = hello.get_body(("plain",))
    # The welcome is the newsletter's built-in sequence step: its footer is the newsletter's.
    assert text_part is not None and "1 Dusk Road, Bath" in text_part.get_content()


def test_a_sign_up_to_another_newsletter_is_confirmed_in_its_name(
    client: TestClient,
    editor: dict[str, str],
    ctx: Context,
    smtp_server: SMTPTestServer,
) -> None:
    _newsletter(client, editor, "robots", **{"from": "Robots <robots@morningpost.test>"})
    _newsletter(client, editor, "gardens")
    r = client.post(
        "/subscribe", json={"email": "both@example.org", "newsletters": ["robots", "gardens"]}
    )
    assert r.status_code == 202
    run_worker(ctx)
    (confirmation,) = smtp_server.handler.wait_for(1)
    msg = confirmation.message()
    assert str(msg["Subject"]) == "Confirm your subscription to Robots and Gardens"
    assert str(msg["From"]) == "Robots <robots@morningpost.test>"


def test_the_unsubscribe_and_preferences_pages_read_the_newsletters_row(
    client: TestClient, editor: dict[str, str], ctx: Context, two: int
) -> None:
    client.patch(
        f"/newsletters/{DEFAULT_NEWSLETTER_ID}", json={"name": "The Evening Post"}, headers=editor
    )
    client.patch(f"/newsletters/{two}", json={"name": "Robots Weekly"}, headers=editor)
    (sid,) = add_subscribers(ctx, 1)
    nonce = nonce_of(ctx, sid)
    unsub = ctx.tokens.unsubscribe_token(sid, nonce)
    prefs = ctx.tokens.preferences_token(sid, nonce)
    assert "Unsubscribe from The Evening Post?" in client.get(f"/unsubscribe/{unsub}").text
    leave_one = client.get(f"/unsubscribe/{unsub}?newsletter=robots").text
    assert "Unsubscribe from Robots Weekly?" in leave_one
    page = client.get(f"/preferences/{prefs}").text
    assert "The Evening Post" in page and "Robots Weekly" in page


# The page cache ------------------------------------------------------------------------------


@pytest.fixture
def instances(settings: Settings) -> Iterator[Callable[..., tuple[TestClient, TestClient]]]:
    """Start two app instances ("processes": each its own engine and page cache) on one database."""
    stack: list[tuple[TestClient, Engine]] = []

    def start(**update: Any) -> tuple[TestClient, TestClient]:
        for _ in range(2):
            engine = make_engine(settings.database_url)
            own = settings.model_copy(update=update)
            client = TestClient(create_app(own, context=build_context(own, engine=engine)))
            client.__enter__()
            stack.append((client, engine))
        return stack[-2][0], stack[-1][0]

    yield start
    for client, engine in stack:
        client.__exit__(None, None, None)
        engine.dispose()


def _stamp(ctx: Context) -> int:
    with ctx.engine.connect() as conn:
        return int(conn.scalar(text("SELECT counter FROM page_stamps WHERE id = 1")) or 0)


def test_a_renamed_newsletter_shows_through_the_page_cache_of_another_process(
    instances: Callable[..., tuple[TestClient, TestClient]],
    client: TestClient,
    editor: dict[str, str],
    ctx: Context,
) -> None:
    robots = _newsletter(client, editor, "robots")
    _publish(ctx, "home-one")
    _publish(ctx, "bot-one", robots)
    # The stamp is asked at every request (0 s), but pages stay cached until it moves.
    writer, reader = instances(page_cache_seconds=0)
    paths = ("/", "/archive", "/archive/home-one", "/archive/feed.xml")
    robot_paths = ("/n/robots", "/n/robots/archive", "/n/robots/archive/bot-one")
    first = {p: reader.get(p) for p in paths + robot_paths}
    for path in paths:
        assert "The AI Morning Post" in first[path].text, path
        again = reader.get(path, headers={"if-none-match": first[path].headers["etag"]})
        assert again.status_code == 304, path  # cached, and validators on the new pages too
    for path in robot_paths:
        again = reader.get(path, headers={"if-none-match": first[path].headers["etag"]})
        assert again.status_code == 304, path
    counter = _stamp(ctx)
    renamed = writer.patch(
        f"/newsletters/{DEFAULT_NEWSLETTER_ID}", json={"name": "The Evening Post"}, headers=editor
    )
    assert renamed.status_code == 200, renamed.text
    assert _stamp(ctx) > counter  # the row's change moved the stamp, in the database
    for path in paths:
        page = reader.get(path, headers={"if-none-match": first[path].headers["etag"]})
        assert page.status_code == 200, path
        assert "The Evening Post" in page.text and "The AI Morning Post" not in page.text, path
    writer.patch(f"/newsletters/{robots}", json={"name": "Robots Weekly"}, headers=editor)
    for path in robot_paths:
        assert "Robots Weekly" in reader.get(path).text, path


def test_the_triggers_on_newsletters_exist(engine: Engine, is_pg: bool) -> None:
    with engine.connect() as conn:
        if is_pg:
            names = set(
                conn.scalars(
                    text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'newsletters'::regclass")
                )
            )
            assert "page_stamps_newsletter_change" in names
        else:
            names = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
            assert {
                "page_stamps_newsletter_insert",
                "page_stamps_newsletter_update",
                "page_stamps_newsletter_delete",
            } <= names
