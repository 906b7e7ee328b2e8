"""Public pages from the page cache: validators and 304s, proxy caching, invalidation across
two app instances on one database, byte-identical output, and /healthz from a recent check."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, inspect, select, text, update
from sqlalchemy.engine import Engine

from app.config import Settings
from app.context import Context, build_context
from app.db import make_engine, session_scope
from app.main import create_app
from app.models import Issue, IssueStatus, PageStamp, utcnow
from app.rendering.blocks import parse_blocks
from app.web import cache
from tests.helpers import SIMPLE_BLOCKS, new_issue

# The sign-up form and its QR code are where a shared link's readers go next: cached the same way.
PUBLIC = (
    "/",
    "/archive",
    "/archive/feed.xml",
    "/archive/hello",
    "/subscribe",
    "/subscribe/qr.png",
)


def _publish(ctx: Context, slug: str = "hello", subject: str = "First subject") -> int:
    with session_scope(ctx.sessions) as s:
        started = utcnow() - timedelta(days=1)
        issue = Issue(
            slug=slug,
            subject=subject,
            preheader="",
            blocks=parse_blocks(SIMPLE_BLOCKS),
            status=IssueStatus.sent,
            started_at=started,
            finished_at=started,
        )
        s.add(issue)
        s.flush()
        return issue.id


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve pages as if two seconds had passed since each change (Last-Modified is then sent).

    In the second of a change a page carries no Last-Modified (app.web.cache.Page._dated).
    """
    monkeypatch.setattr(cache, "page_clock", lambda: utcnow() + timedelta(seconds=2))


def _edit(ctx: Context, issue_id: int, **values: Any) -> None:
    """Change an issue as any writer might (console, worker, psql): a plain UPDATE."""
    with session_scope(ctx.sessions) as s:
        s.execute(update(Issue).where(Issue.id == issue_id).values(**values))


@pytest.fixture
def instances(settings: Settings) -> Callable[..., tuple[TestClient, TestClient]]:
    """Start two app instances ("processes": each its own engine and cache) on one database."""
    stack: list[tuple[TestClient, Engine]] = []

    def start(**update: Any) -> tuple[TestClient, TestClient]:
        for _ in range(2):
            engine = make_engine(settings.database_url)
            own = settings.model_copy(update=update)
            client = TestClient(create_app(own, context=build_context(own, engine=engine)))
            client.__enter__()
            stack.append((client, engine))
        return stack[-2][0], stack[-1][0]

    yield start  # type: ignore[misc]
    for client, engine in stack:
        client.__exit__(None, None, None)
        engine.dispose()


def _checkouts(engine: Engine) -> list[float]:
    """Record when a connection leaves the pool (SQLAlchemy's or a bare DBAPI read alike)."""
    seen: list[float] = []
    event.listen(engine, "checkout", lambda *args: seen.append(time.monotonic()))
    return seen


# Validators, 304 and Cache-Control -------------------------------------------------------------


@pytest.mark.usefixtures("later")
def test_every_public_page_carries_validators_and_proxy_caching(
    client: TestClient, ctx: Context
) -> None:
    _publish(ctx)
    for path in PUBLIC:
        r = client.get(path)
        assert r.status_code == 200, path
        control = r.headers["cache-control"]
        assert "public" in control and "max-age=60" in control, path
        assert "stale-while-revalidate=" in control, path
        assert r.headers["etag"].startswith('"') and r.headers["etag"].endswith('"'), path
        assert parsedate_to_datetime(r.headers["last-modified"]) <= utcnow(), path
        assert int(r.headers["content-length"]) == len(r.content), path


@pytest.mark.usefixtures("later")
def test_if_none_match_answers_304_with_the_validators_and_no_body(
    client: TestClient, ctx: Context
) -> None:
    _publish(ctx)
    for path in PUBLIC:
        first = client.get(path)
        etag = first.headers["etag"]
        for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            again = client.get(path, headers={"if-none-match": sent})
            assert again.status_code == 304, (path, sent)
            assert again.content == b""
            assert again.headers["etag"] == etag
            assert again.headers["cache-control"] == first.headers["cache-control"]
        other = client.get(path, headers={"if-none-match": '"not-this-one"'})
        assert other.status_code == 200 and other.content == first.content
        # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
        both = {"if-none-match": '"old"', "if-modified-since": first.headers["last-modified"]}
        assert client.get(path, headers=both).status_code == 200


@pytest.mark.usefixtures("later")
def test_if_modified_since_answers_304_from_last_modified(client: TestClient, ctx: Context) -> None:
    _publish(ctx)
    r = client.get("/archive/hello")
    modified = parsedate_to_datetime(r.headers["last-modified"])
    later = format_datetime(modified + timedelta(hours=1), usegmt=True)
    earlier = format_datetime(modified - timedelta(seconds=1), usegmt=True)
    assert (
        client.get(
            "/archive/hello", headers={"if-modified-since": r.headers["last-modified"]}
        ).status_code
        == 304
    )
    assert client.get("/archive/hello", headers={"if-modified-since": later}).status_code == 304
    assert client.get("/archive/hello", headers={"if-modified-since": earlier}).status_code == 200
    assert (
        client.get("/archive/hello", headers={"if-modified-since": "yesterday"}).status_code == 200
    )


@pytest.mark.usefixtures("later")
def test_an_edit_moves_etag_and_last_modified(client: TestClient, ctx: Context) -> None:
    issue_id = _publish(ctx)
    before = client.get("/archive/hello")
    # Last-Modified has whole seconds: a change within the same second is told by the ETag alone.
    _edit(ctx, issue_id, subject="Hello again")
    after = client.get("/archive/hello")
    assert after.headers["etag"] != before.headers["etag"]
    assert (
        client.get("/archive/hello", headers={"if-none-match": before.headers["etag"]}).status_code
        == 200
    )
    assert parsedate_to_datetime(after.headers["last-modified"]) >= parsedate_to_datetime(
        before.headers["last-modified"]
    )


def test_cached_pages_keep_the_security_headers(
    instances: Callable[..., tuple[TestClient, TestClient]], ctx: Context
) -> None:
    _publish(ctx)
    a, _ = instances(page_cache_seconds=60)
    seen = _checkouts(a.app.state.ctx.engine)  # type: ignore[attr-defined]
    rendered = 0
    for _ in range(2):  # a render, then a hit answered before routing
        rendered = rendered or len(seen)
        issue = a.get("/archive/hello")
        assert "frame-ancestors 'self'" in issue.headers["content-security-policy"]
        assert issue.headers["x-frame-options"] == "SAMEORIGIN"
        home = a.get("/")
        assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
        assert home.headers["x-frame-options"] == "DENY"
        for r in (issue, home, a.get("/archive/feed.xml")):
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "no-referrer"
        # The host check still comes first.
        assert a.get("/archive/hello", headers={"host": "evil.example"}).status_code == 400
    assert len(seen) == rendered  # the second round came from memory


# The cache itself ---------------------------------------------------------------------------------


def test_a_cached_page_is_byte_identical_in_both_instances_and_asks_the_database_nothing(
    instances: Callable[..., tuple[TestClient, TestClient]], ctx: Context
) -> None:
    _publish(ctx)
    a, b = instances(page_cache_seconds=60)
    first = {path: a.get(path) for path in PUBLIC}
    seen = _checkouts(a.app.state.ctx.engine)  # type: ignore[attr-defined]
    for path, rendered in first.items():
        cached = a.get(path)
        elsewhere = b.get(path)  # another process: its own render
        assert cached.status_code == elsewhere.status_code == 200
        assert cached.content == rendered.content == elsewhere.content, path
        assert cached.headers["etag"] == rendered.headers["etag"] == elsewhere.headers["etag"]
    assert seen == []  # within the check interval a hit is memory only


def test_the_bytes_are_what_the_templates_render(client: TestClient, ctx: Context) -> None:
    """The cache stores exactly the response render_page would send (nothing added, no drift)."""
    _publish(ctx)
    html = client.get("/archive").content
    assert html.startswith(b"<!doctype html>") and html.rstrip().endswith(b"</html>")
    assert html.count(b'href="/archive/hello"') == 1
    assert b'aria-current="page"' in html  # the request's own path is in the context


def test_a_newsletters_sign_up_page_and_qr_are_cached_and_follow_its_slug(
    instances: Callable[..., tuple[TestClient, TestClient]], editor: dict[str, str]
) -> None:
    a, b = instances(page_cache_seconds=0)
    made = a.post("/newsletters", json={"slug": "robots", "name": "Robots"}, headers=editor)
    assert made.status_code == 201, made.text
    form, qr = b.get("/n/robots/subscribe"), b.get("/n/robots/subscribe/qr.png")
    assert form.status_code == qr.status_code == 200
    assert 'action="/n/robots/subscribe"' in form.text and 'value="robots"' in form.text
    assert qr.headers["content-type"] == "image/png" and qr.content.startswith(b"\x89PNG")
    for r in (form, qr):
        again = b.get(r.url.path, headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
    # A move to another slug, through the other instance, shows at the next check.
    moved = a.patch(f"/newsletters/{made.json()['id']}", json={"slug": "machines"}, headers=editor)
    assert moved.status_code == 200, moved.text
    assert b.get("/n/robots/subscribe").status_code == 404
    assert b.get("/n/robots/subscribe/qr.png").status_code == 404
    renamed = b.get("/n/machines/subscribe")
    assert renamed.status_code == 200 and 'action="/n/machines/subscribe"' in renamed.text
    assert b.get("/n/machines/subscribe/qr.png").content != qr.content  # a code of its new page


def test_unknown_and_unpublished_slugs_are_404_and_not_cached(
    client: TestClient, ctx: Context
) -> None:
    issue_id = _publish(ctx)
    _edit(ctx, issue_id, status=IssueStatus.draft)
    for path in ("/archive/hello", "/archive/nothing-here"):
        r = client.get(path, headers={"accept": "text/html"})
        assert r.status_code == 404 and "Page not found" in r.text
        assert "etag" not in r.headers
    _edit(ctx, issue_id, status=IssueStatus.sent)
    assert client.get("/archive/hello").status_code == 200


# Invalidation across two instances --------------------------------------------------------------


def test_an_edit_after_sending_shows_in_the_other_instance_at_its_next_check(
    instances: Callable[..., tuple[TestClient, TestClient]], ctx: Context
) -> None:
    issue_id = _publish(ctx)
    a, b = instances(page_cache_seconds=0)
    for client in (a, b):
        for path in ("/archive/hello", "/archive", "/", "/archive/feed.xml"):
            assert "First subject" in client.get(path).text
    _edit(ctx, issue_id, subject="Corrected subject")
    for client in (a, b):
        for path in ("/archive/hello", "/archive", "/", "/archive/feed.xml"):
            page = client.get(path).text
            assert "Corrected subject" in page and "First subject" not in page, path


def test_a_stale_page_lasts_no_longer_than_page_cache_seconds(
    instances: Callable[..., tuple[TestClient, TestClient]], ctx: Context
) -> None:
    bound = 1.0
    issue_id = _publish(ctx)
    a, b = instances(page_cache_seconds=bound)
    for client in (a, b):
        assert "Hello readers" in client.get("/archive/hello").text
    _edit(ctx, issue_id, blocks=parse_blocks([{"type": "markdown", "body": "Fixed a typo."}]))
    committed = time.monotonic()
    for client in (a, b):
        while "Fixed a typo." not in client.get("/archive/hello").text:
            # The documented bound, plus room for one render on a loaded machine.
            assert time.monotonic() - committed < bound + 2.0, "the old page outlived its bound"
            time.sleep(0.02)


def test_a_send_cancel_and_delete_through_one_instance_show_in_the_other(
    instances: Callable[..., tuple[TestClient, TestClient]],
    editor: dict[str, str],
    ctx: Context,
) -> None:
    a, b = instances(page_cache_seconds=0)
    issue = new_issue(a, editor, slug="fresh", subject="Fresh off the press")
    assert b.get("/archive/fresh").status_code == 404
    assert "Fresh off the press" not in b.get("/archive").text
    sent = a.post(f"/issues/{issue['id']}/send", headers=editor)
    assert sent.status_code == 202, sent.text
    assert "Fresh off the press" in b.get("/archive/fresh").text
    assert "Fresh off the press" in b.get("/").text
    assert "Fresh off the press" in b.get("/archive/feed.xml").text
    if sent.json()["status"] == IssueStatus.sending:
        assert a.post(f"/issues/{issue['id']}/cancel", headers=editor).status_code == 200
        assert b.get("/archive/fresh").status_code == 404
        assert "Fresh off the press" not in b.get("/archive").text
        _edit(ctx, issue["id"], status=IssueStatus.sent)
    assert b.get("/archive/fresh").status_code == 200
    with session_scope(ctx.sessions) as s:  # deleted by hand: no API deletes a sent issue
        s.execute(text("DELETE FROM issues WHERE slug = 'fresh'"))
    assert b.get("/archive/fresh").status_code == 404
    assert "Fresh off the press" not in b.get("/archive/feed.xml").text


@pytest.mark.usefixtures("later")
def test_a_process_with_other_settings_moves_the_stamp_when_it_starts(
    instances: Callable[..., tuple[TestClient, TestClient]], ctx: Context
) -> None:
    _publish(ctx)
    old, _ = instances(page_cache_seconds=0)
    before = old.get("/")
    assert "The AI Morning Post" in before.text
    counter = _counter(ctx)
    renamed, _ = instances(page_cache_seconds=0, newsletter_name="The Evening Post")
    after = renamed.get("/", headers={"if-none-match": before.headers["etag"]})
    assert after.status_code == 200 and "The Evening Post" in after.text
    assert _counter(ctx) > counter  # every running process renders its pages again
    # A proxy holding the old page learns it changed from the new process's Last-Modified.
    since = {"if-modified-since": before.headers["last-modified"]}
    if after.headers["last-modified"] != before.headers["last-modified"]:
        assert renamed.get("/", headers=since).status_code == 200


def test_last_modified_waits_for_the_second_of_the_change_to_end(
    client: TestClient, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two changes in one second would share a Last-Modified: an If-Modified-Since alone would
    get a 304 for the first version. So in that second only the ETag validates."""
    _publish(ctx)
    client.get("/archive")  # the process claims the stamp (its first look may move it)
    with ctx.engine.connect() as conn:
        changed_at = conn.scalar(select(PageStamp.changed_at).where(PageStamp.id == 1))
    assert changed_at is not None
    # Served in the second of the change (the clock is set, so no slow machine crosses it).
    monkeypatch.setattr(cache, "page_clock", lambda: changed_at + timedelta(microseconds=1))
    first = client.get("/archive/hello")
    assert "last-modified" not in first.headers
    second = format_datetime(changed_at.replace(microsecond=0), usegmt=True)
    assert client.get("/archive/hello", headers={"if-modified-since": second}).status_code == 200
    # Once the second is over, the same cached page carries its date and answers by it.
    monkeypatch.setattr(cache, "page_clock", lambda: changed_at + timedelta(seconds=1))
    settled = client.get("/archive/hello")
    assert settled.headers["etag"] == first.headers["etag"]
    assert settled.headers["last-modified"] == second
    assert client.get("/archive/hello", headers={"if-modified-since": second}).status_code == 304


def test_last_modified_also_waits_out_a_processs_trust_in_its_stamp() -> None:
    """A process trusts its last look at the stamp PAGE_CACHE_SECONDS: until that has passed
    after the second of a change, a later change in that second may be unseen."""
    changed_at = utcnow().replace(microsecond=500_000)
    lag = timedelta(seconds=1)
    early = cache.Page.build(b"x", "text/html", changed_at, changed_at + timedelta(seconds=1), lag)
    assert early.modified is None
    assert early.settled(changed_at + timedelta(seconds=1.4), lag).modified is None
    late = early.settled(changed_at + timedelta(seconds=1.5), lag)
    assert late.modified == changed_at.replace(microsecond=0)
    assert late.etag == early.etag


def _counter(ctx: Context) -> int:
    with ctx.engine.connect() as conn:
        return int(conn.scalar(text("SELECT counter FROM page_stamps WHERE id = 1")) or 0)


def test_the_triggers_that_move_the_stamp_exist(engine: Engine, is_pg: bool) -> None:
    """A later SQLite migration that rebuilds `issues` drops them: it must create them again."""
    with engine.connect() as conn:
        if is_pg:
            names = conn.scalars(
                text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'issues'::regclass")
            ).all()
            assert "page_stamps_issue_change" in names
        else:
            names = conn.scalars(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            assert {
                "page_stamps_issue_insert",
                "page_stamps_issue_update",
                "page_stamps_issue_delete",
            } <= set(names)
    assert "page_stamps" in inspect(engine).get_table_names()


# /healthz ----------------------------------------------------------------------------------------


@pytest.fixture
def own_database(settings: Settings, is_pg: bool, tmp_path: Path) -> Iterator[str]:
    """A database of its own for a test that takes it away (the shared one must live on)."""
    if not is_pg:
        yield settings.database_url
        return
    admin = create_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    name = f"mp_health_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield admin.url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_healthz_reports_a_database_that_went_away_within_a_second(
    settings: Settings, own_database: str, is_pg: bool
) -> None:
    engine = make_engine(own_database)
    own = settings.model_copy(update={"database_url": own_database})
    with TestClient(create_app(own, context=build_context(own, engine=engine))) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        if is_pg:
            # Refused from another database: the test's shared one.
            admin = create_engine(settings.database_url, isolation_level="AUTOCOMMIT")
            name = engine.url.database
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
            admin.dispose()
        else:
            # The file gives way to a directory, and the pool lets its connections go.
            path = Path(own_database.split("///", 1)[1])
            shutil.move(path, path.with_suffix(".gone"))
            path.mkdir()
            engine.dispose()
        gone = time.monotonic()
        while (r := c.get("/healthz")).status_code == 200:
            # HEALTH_SECONDS, plus room for a check on a loaded machine.
            assert time.monotonic() - gone < 1.0 + 3.0, "a dead database was reported healthy"
            time.sleep(0.02)
        assert r.status_code == 503 and r.json() == {"status": "unavailable"}
    engine.dispose()


def test_healthz_shares_one_check_a_second(client: TestClient) -> None:
    # /healthz checks on a connection of its own (app.main._health_check), never the pool's.
    seen = _checkouts(client.app.state.health_engine)  # type: ignore[attr-defined]
    started = time.monotonic()
    checked = client.get("/healthz")  # the handler's own check
    for _ in range(50):
        held = client.get("/healthz")  # answered before routing while that check holds
        assert held.content == checked.content == b'{"status":"ok"}'
        assert held.headers["content-type"] == checked.headers["content-type"]
    seconds = time.monotonic() - started
    # One check a second at most (the next starts at four fifths of it), not one a probe.
    assert 1 <= len(seen) <= int(seconds / 0.8) + 1


def test_robots_txt_keeps_crawlers_off_token_pages(client: TestClient) -> None:
    r = client.get("/robots.txt")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    for path in ("/confirm/", "/unsubscribe/", "/preferences/", "/editor/"):
        assert f"Disallow: {path}\n" in r.text
    assert "Disallow: /archive" not in r.text and "Disallow: /\n" not in r.text
