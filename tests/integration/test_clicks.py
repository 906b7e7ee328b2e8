"""Click counts: links rewritten once per issue, the /l/ redirect, scanners, stats."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.models import Click, Delivery, Issue, Subscriber, utcnow
from app.rendering.compile import Renderer
from app.rendering.links import ClickTokens, rewrite_links
from app.sends.smtp.mailer import make_mailer
from app.sends.worker import Worker
from tests.delivery_support import add_issue, add_subscribers, send_now
from tests.helpers import nonce_of
from tests.smtp_server import SMTPTestServer

LINK = re.compile(r'href="(http://testserver/l/[^"]+)"')


def sent_parts(ctx: Context, smtp_server: SMTPTestServer) -> tuple[str, str]:
    """Send the sample issue to one reader; return (html, text) of what arrived."""
    add_subscribers(ctx, ["reader@example.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    asyncio.run(Worker(ctx, make_mailer(ctx.settings)).run_until_idle())
    (received,) = smtp_server.handler.received
    msg = received.message()
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return html.get_content(), plain.get_content()


def age_the_send(ctx: Context, minutes: int = 5) -> None:
    """Move the send into the past, out of the scanner window."""
    past = utcnow() - timedelta(minutes=minutes)
    with session_scope(ctx.sessions) as s:
        s.execute(update(Issue).values(started_at=past))
        s.execute(update(Delivery).where(Delivery.sent_at.is_not(None)).values(sent_at=past))


def test_links_are_rewritten_in_the_html_part_only(
    ctx: Context, smtp_server: SMTPTestServer
) -> None:
    html, text = sent_parts(ctx, smtp_server)
    links = LINK.findall(html)
    assert len(links) == 1
    assert 'href="https://example.org/a"' not in html
    # The text part keeps the original URL; list links stay as they were.
    assert "https://example.org/a" in text
    assert "/l/" not in text
    assert re.search(r'href="http://testserver/unsubscribe/[^"]+"', html)
    assert re.search(r'href="http://testserver/preferences/[^"]+"', html)
    assert 'href="http://testserver/archive/issue-1"' in html
    token = links[0].rsplit("/", 1)[1]
    slug, index, url = ClickTokens(ctx.settings.secret_keys).read(token)
    assert (slug, index, url) == ("issue-1", 0, "https://example.org/a")
    assert "reader" not in token  # the token names the issue and the link, not the reader


def test_click_redirects_and_counts_outside_the_scanner_window(
    client: TestClient, ctx: Context, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    html, _ = sent_parts(ctx, smtp_server)
    link = LINK.findall(html)[0]
    path = link.removeprefix("http://testserver")

    # Right after the send: a scanner's fetch, kept but not in the headline count.
    resp = client.get(path, follow_redirects=False)
    assert resp.status_code == 302
    assert resp.headers["location"] == "https://example.org/a"
    assert resp.headers["referrer-policy"] == "no-referrer"

    age_the_send(ctx)
    for _ in range(2):
        assert client.get(path, follow_redirects=False).status_code == 302
    assert client.head(path, follow_redirects=False).status_code == 302  # not counted

    (issue,) = client.get("/issues", headers=editor).json()
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    # Followed twice from one client: one click (issue 17 item 10).
    assert stats["clicks"] == [
        {"url": "https://example.org/a", "count": 1, "scanner_clicks": 1, "readers": 0}
    ]
    with session_scope(ctx.sessions) as s:
        assert s.scalars(select(Click.subscriber_id)).all() == [None, None]


def test_a_tampered_token_is_a_400(client: TestClient, ctx: Context) -> None:
    tokens = ClickTokens(ctx.settings.secret_keys)
    good = tokens.make("issue-1", 0, "https://example.org/a")
    bad = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    assert client.get(f"/l/{bad}", follow_redirects=False).status_code == 400
    assert client.get("/l/not-a-token", follow_redirects=False).status_code == 400
    # Signed, but not an http(s) URL: never redirected to.
    evil = tokens.make("issue-1", 0, "javascript:alert(1)")
    assert client.get(f"/l/{evil}", follow_redirects=False).status_code == 400
    # Signed with another purpose's salt: refused.
    other = ClickTokens(["some-other-key"]).make("issue-1", 0, "https://example.org/a")
    assert client.get(f"/l/{other}", follow_redirects=False).status_code == 400


def test_rewriting_skips_own_links_mailto_and_anchors(settings: Settings) -> None:
    page = (
        '<a href="https://example.org/x?a=1&amp;b=2">x</a>'
        '<a class="btn" href="https://example.org/x?a=1&amp;b=2">again</a>'
        '<a href="mailto:editor@example.org">mail</a>'
        '<a href="#top">top</a>'
        '<a href="http://testserver/unsubscribe/TOKEN">leave</a>'
        "<a href='https://example.com/y'>y</a>"
        '<img src="https://example.org/pic.png">'
    )
    out = rewrite_links(page, settings, "slug-1")
    tokens = ClickTokens(settings.secret_keys)
    found = re.findall(r"""href=["']http://testserver/l/([^"']+)["']""", out)
    assert [tokens.read(t) for t in found] == [
        ("slug-1", 0, "https://example.org/x?a=1&b=2"),
        ("slug-1", 0, "https://example.org/x?a=1&b=2"),
        ("slug-1", 1, "https://example.com/y"),
    ]
    assert 'href="mailto:editor@example.org"' in out
    assert 'href="#top"' in out
    assert 'href="http://testserver/unsubscribe/TOKEN"' in out
    assert 'src="https://example.org/pic.png"' in out


def test_click_counts_can_be_turned_off(settings: Settings) -> None:
    settings.click_counts = False
    settings.secret_keys = settings.secret_keys or ["k"]
    compiled = Renderer(settings).compile_issue(
        subject="S",
        preheader="P",
        slug="s",
        blocks=[{"type": "markdown", "body": "A [link](https://example.org/a)."}],
    )
    assert 'href="https://example.org/a"' in compiled.html
    assert "/l/" not in compiled.html


def test_stats_without_clicks_have_an_empty_list(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    issue_id = add_issue(ctx)
    assert client.get(f"/issues/{issue_id}/stats", headers=editor).json()["clicks"] == []


def test_readers_are_tracked_only_when_opted_in(
    client: TestClient, ctx: Context, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    ctx.settings.track_readers = True
    ann, bob = add_subscribers(ctx, ["ann@example.org", "bob@example.org"])
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    asyncio.run(Worker(ctx, make_mailer(ctx.settings)).run_until_idle())
    links = {}
    for received in smtp_server.handler.received:
        part = received.message().get_body(preferencelist=("html",))
        assert part is not None
        (link,) = LINK.findall(part.get_content())
        links[received.rcpt_tos[0]] = link.removeprefix("http://testserver")
    # Each copy's link carries its own reader (their preferences token), filled per recipient.
    assert links["ann@example.org"].endswith(
        "/" + ctx.tokens.preferences_token(ann, nonce_of(ctx, ann))
    )
    assert links["bob@example.org"].endswith(
        "/" + ctx.tokens.preferences_token(bob, nonce_of(ctx, bob))
    )

    # Ann's copy went out five minutes ago, Bob's just now: the window is per reader.
    past = utcnow() - timedelta(minutes=5)
    with session_scope(ctx.sessions) as s:
        s.execute(update(Issue).values(started_at=past))
        s.execute(update(Delivery).where(Delivery.subscriber_id == ann).values(sent_at=past))
    assert client.get(links["ann@example.org"], follow_redirects=False).status_code == 302
    assert client.get(links["bob@example.org"], follow_redirects=False).status_code == 302
    tampered = links["bob@example.org"][:-2] + "xx"
    assert client.get(tampered, follow_redirects=False).status_code == 400

    stats = client.get(f"/issues/{issue_id}/stats", headers=editor).json()
    assert stats["clicks"] == [
        {"url": "https://example.org/a", "count": 1, "scanner_clicks": 1, "readers": 1}
    ]
    with session_scope(ctx.sessions) as s:
        rows = s.execute(select(Click.subscriber_id, Click.scanner).order_by(Click.id)).all()
        assert [tuple(r) for r in rows] == [(ann, False), (bob, True)]
        assert s.get(Subscriber, ann) is not None

    # Turned off again: links already sent still redirect, but the reader is not kept.
    ctx.settings.track_readers = False
    assert client.get(links["ann@example.org"], follow_redirects=False).status_code == 302
    with session_scope(ctx.sessions) as s:
        last = s.scalars(select(Click).order_by(Click.id.desc())).first()
        assert last is not None and last.subscriber_id is None


def _click_rows(ctx: Context) -> int:
    with session_scope(ctx.sessions) as s:
        return len(s.scalars(select(Click.id)).all())


def test_repeated_anonymous_clicks_count_once_per_client_and_link(
    client: TestClient, ctx: Context, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    """Issue 17 item 10: 200 requests to /l/<token> raised the count from 0 to 200."""
    html, _ = sent_parts(ctx, smtp_server)
    path = LINK.findall(html)[0].removeprefix("http://testserver")
    age_the_send(ctx)
    codes = {client.get(path, follow_redirects=False).status_code for _ in range(200)}
    assert codes == {302}  # the redirect keeps working
    assert _click_rows(ctx) == 1
    # Another reader, somewhere else, is another click.
    app = client.app
    with TestClient(app, base_url="http://testserver", client=("203.0.113.8", 5000)) as other:
        for _ in range(3):
            resp = other.get(path, follow_redirects=False)
            assert resp.status_code == 302
            assert resp.headers["location"] == "https://example.org/a"
    (issue,) = client.get("/issues", headers=editor).json()
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["clicks"][0]["count"] == 2 and _click_rows(ctx) == 2


def test_a_reader_named_link_counts_one_click_per_reader(
    client: TestClient, ctx: Context, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    ctx.settings.track_readers = True
    html, _ = sent_parts(ctx, smtp_server)
    path = LINK.findall(html)[0].removeprefix("http://testserver")
    age_the_send(ctx)
    # The same reader from many places (phone, laptop, a rotating proxy): one click.
    for n in range(30):
        with TestClient(client.app, client=(f"198.51.100.{n}", 5000)) as c:
            assert c.get(path, follow_redirects=False).status_code == 302
    (issue,) = client.get("/issues", headers=editor).json()
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["clicks"][0]["count"] == 1 and stats["clicks"][0]["readers"] == 1
    assert _click_rows(ctx) == 1
