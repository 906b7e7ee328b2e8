"""The editor's morning, second pass (issue 22): nothing lost, nothing surprising."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.context import Context
from app.db import session_scope
from app.issues.duplicate import next_morning
from app.models import Click, Issue, IssueRevision, IssueStatus, Subscriber, utcnow
from app.sends.smtp.mailer import make_mailer
from app.sends.worker import Worker
from tests.console_support import EMAIL, PASSWORD, add_account, sign_in
from tests.helpers import SIMPLE_BLOCKS, add_subscribers, new_issue, run_worker

ZONES_MIXED = ["Asia/Tokyo", "Asia/Tokyo", "Europe/Berlin", "Pacific/Honolulu"]


@pytest.fixture
def csrf(client: TestClient, ctx: Context) -> str:
    """Sign the client in as an editor and return the session's CSRF token."""
    add_account(ctx)
    return sign_in(client)


def _zones(ctx: Context, zones: list[str]) -> None:
    ids = add_subscribers(ctx, len(zones))
    with session_scope(ctx.sessions) as session:
        for sub_id, zone in zip(ids, zones, strict=True):
            session.execute(update(Subscriber).where(Subscriber.id == sub_id).values(timezone=zone))


def test_send_at_their_time_asks_first_with_counts_and_moments(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    # Today, 06:00 has passed in Tokyo long before it comes in Honolulu: some now, some later.
    _zones(ctx, ZONES_MIXED)
    issue = new_issue(client, editor)
    day = utcnow().date()
    page = client.get(
        f"/editor/issues/{issue['id']}/send-local",
        params={"local_time": "06:00", "local_date": day.isoformat()},
    )
    assert page.status_code == 200, page.text
    # Asking changed nothing: the issue is still a draft and no row is frozen.
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Issue, issue["id"]).status == IssueStatus.draft
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    now = utcnow()
    moments = [
        datetime.combine(day, time(6), tzinfo=ZoneInfo(z)).astimezone(UTC) for z in ZONES_MIXED
    ]
    due_now = sum(1 for m in moments if m <= now)
    ahead = sorted(m for m in moments if m > now)
    assert re.search(rf"\b{due_now} get it now\b", text), text
    assert re.search(rf"\b{len(ahead)} get it later\b", text), text
    if ahead:
        assert f"it later: the first at {ahead[0]:%Y-%m-%d %H:%M} UTC" in text
        assert f"the last at {ahead[-1]:%Y-%m-%d %H:%M} UTC" in text
    if due_now:
        assert "as soon as you confirm" in text
    assert "Send to 4 readers at their time" in text
    sent = client.post(
        f"/editor/issues/{issue['id']}/send-local",
        data={"local_time": "06:00", "local_date": day.isoformat(), "csrf_token": csrf},
    )
    assert sent.status_code == 200 and "their own time zone" in sent.text


def test_send_at_their_time_a_day_ahead_states_everyone_later(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    _zones(ctx, ["Asia/Tokyo", "America/New_York"])
    issue = new_issue(client, editor)
    day = (utcnow() + timedelta(days=3)).date()
    page = client.get(
        f"/editor/issues/{issue['id']}/send-local",
        params={"local_time": "06:00", "local_date": day.isoformat()},
    )
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    assert re.search(r"\b0 get it now\b", text) and re.search(r"\b2 get it later\b", text)
    assert f"the first at {day - timedelta(days=1)} 21:00 UTC" in text  # 06:00 Tokyo
    assert f"the last at {day} 11:00 UTC" in text  # 06:00 New York (EST)
    bad = client.get(
        f"/editor/issues/{issue['id']}/send-local",
        params={"local_time": "six", "local_date": day.isoformat()},
    )
    assert bad.status_code == 422 and "06:00" in bad.text
    with session_scope(ctx.sessions) as session:
        assert session.scalars(select(Issue.status)).all() == [IssueStatus.draft]


NEW_TEXT = """---
subject: Kept across a sign-out
---
## The lead {lead}
Every word of this survives.
"""


def test_signed_out_save_keeps_the_text_and_sign_in_brings_it_back(
    client: TestClient, ctx: Context, csrf: str
) -> None:
    client.post("/editor/logout", data={"csrf_token": csrf})
    refused = client.post("/editor/issues", data={"markdown": NEW_TEXT, "csrf_token": csrf})
    assert refused.status_code == 403
    assert "Nothing you wrote is lost" in refused.text
    assert "Every word of this survives." in refused.text  # on the page, not only in memory
    assert 'name="next" value="/editor/issues/new"' in refused.text
    with session_scope(ctx.sessions) as session:
        assert session.scalars(select(IssueRevision)).all() == []  # no write before sign-in
    back = client.post(
        "/editor/login",
        data={
            "email": EMAIL,
            "password": PASSWORD,
            "next": "/editor/issues/new",
            "markdown": NEW_TEXT,
        },
    )
    assert back.status_code == 200
    assert back.url.path == "/editor/issues/new" and "revision=" in str(back.url)
    assert "Every word of this survives." in back.text
    assert "when your session ended" in back.text


def test_autosave_answers_an_ended_session_in_json(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    issue = new_issue(client, editor)
    client.post("/editor/logout", data={"csrf_token": csrf})
    r = client.post(
        f"/editor/issues/{issue['id']}/autosave",
        data={"markdown": NEW_TEXT},
        headers={"Accept": "application/json", "X-CSRF-Token": csrf},
    )
    assert r.status_code == 403
    assert r.json()["error"] == "session_ended"
    assert r.json()["sign_in"] == f"/editor/login?next=/editor/issues/{issue['id']}/edit"


def test_autosave_keeps_revisions_that_restore(client: TestClient, ctx: Context, csrf: str) -> None:
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
    first = client.post("/editor/issues/autosave", data={"markdown": NEW_TEXT}, headers=headers)
    body = first.json()
    assert body["saved"] and body["applied"], body
    issue_id = body["id"]
    # Text that does not read as an issue is kept as a revision and not applied.
    broken = client.post(
        f"/editor/issues/{issue_id}/autosave", data={"markdown": "no front matter"}, headers=headers
    ).json()
    assert broken["saved"] and not broken["applied"] and "line 1" in broken["problem"]
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Issue, issue_id).subject == "Kept across a sign-out"
        # Autosaves while typing fold into one revision.
        assert len(session.scalars(select(IssueRevision)).all()) == 1
    listing = client.get(f"/editor/issues/{issue_id}/revisions")
    assert listing.status_code == 200 and "autosaved" in listing.text
    with session_scope(ctx.sessions) as session:
        session.add(
            IssueRevision(
                issue_id=issue_id,
                source="save",
                markdown=NEW_TEXT.replace("Kept across", "Restored after"),
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    with session_scope(ctx.sessions) as session:
        rid = max(r.id for r in session.scalars(select(IssueRevision)))
    restored = client.post(
        f"/editor/issues/{issue_id}/revisions/{rid}/restore", data={"csrf_token": csrf}
    )
    assert restored.status_code == 200 and "The revision is restored." in restored.text
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Issue, issue_id).subject == "Restored after a sign-out"
    # Without the CSRF token nothing is restored.
    forged = client.post(f"/editor/issues/{issue_id}/revisions/{rid}/restore", data={})
    assert forged.status_code == 403


def test_a_restore_does_not_replace_a_save_made_after_the_revision_was_opened(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    issue = new_issue(client, editor)
    old_text = NEW_TEXT.replace("Kept across", "An old take on").replace(
        "subject: ", "slug: old-take\nsubject: "
    )
    with session_scope(ctx.sessions) as session:
        row = IssueRevision(
            issue_id=issue["id"],
            source="save",
            markdown=old_text,
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        session.add(row)
        session.flush()
        rid = row.id
    page = client.get(f"/editor/issues/{issue['id']}/revisions/{rid}")
    opened_at = re.search(r'name="version" value="(\d+)"', page.text)
    assert opened_at is not None, "the restore form names the version it was opened at"
    # A colleague saves meanwhile (the API, with the version they read).
    theirs = client.patch(
        f"/issues/{issue['id']}",
        json={"subject": "A colleague's fresh subject"},
        headers={
            **editor,
            "If-Match": client.get(f"/issues/{issue['id']}", headers=editor).headers["etag"],
        },
    )
    assert theirs.status_code == 200, theirs.text
    form = {"csrf_token": csrf, "version": opened_at.group(1)}
    refused = client.post(f"/editor/issues/{issue['id']}/revisions/{rid}/restore", data=form)
    assert refused.status_code == 200 and "was not restored" in refused.text
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Issue, issue["id"]).subject == "A colleague's fresh subject"
    # Asked again from the page as it is now, the restore goes through, slug included.
    again = re.search(r'name="version" value="(\d+)"', refused.text)
    assert again is not None
    restored = client.post(
        f"/editor/issues/{issue['id']}/revisions/{rid}/restore",
        data={"csrf_token": csrf, "version": again.group(1)},
    )
    assert "The revision is restored." in restored.text
    with session_scope(ctx.sessions) as session:
        now = session.get_one(Issue, issue["id"])
        assert now.subject == "An old take on a sign-out" and now.slug == "old-take"


@pytest.mark.parametrize(
    ("given", "lands"),
    [
        ("/editor/issues/7?x=1", "/editor/issues/7?x=1"),
        ("https://evil.example/editor/", "/editor/"),
        ("//evil.example/editor/", "/editor/"),
        ("/editor/\\\\evil.example", "/editor/"),
        ("/elsewhere", "/editor/"),
        ("/editor/../archive", "/editor/"),
        ("/editor/login", "/editor/"),
    ],
)
def test_sign_in_returns_to_the_page_asked_for_and_only_here(
    client: TestClient, ctx: Context, given: str, lands: str
) -> None:
    add_account(ctx)
    asked = client.get("/editor/subscribers?q=reader", follow_redirects=False)
    assert asked.headers["location"] == "/editor/login?next=/editor/subscribers%3Fq%3Dreader"
    r = client.post(
        "/editor/login",
        data={"email": EMAIL, "password": PASSWORD, "next": given},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == lands


def test_clicks_per_link_on_the_results_page_and_the_dashboard(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str], smtp_server: Any
) -> None:
    add_subscribers(ctx, 2)
    issue = new_issue(client, editor)
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202
    run_worker(ctx)
    with session_scope(ctx.sessions) as session:
        for url, n in (("https://example.org/a", 3), ("https://example.org/<b>", 1)):
            session.add_all(Click(issue_id=issue["id"], url=url) for _ in range(n))
        session.add(Click(issue_id=issue["id"], url="https://example.org/a", scanner=True))
    results = client.get(f"/editor/issues/{issue['id']}/results")
    assert "Clicks per link" in results.text
    assert re.search(r"example\.org/a</a>.*?Clicks\">3<", results.text, re.S)
    assert "example.org/&lt;b&gt;" in results.text  # escaped, never raw
    live = client.get(f"/editor/issues/{issue['id']}/results.json").json()
    assert 'data-tile="clicks">4<' in live["tiles"] and "example.org/a" in live["clicks"]
    dashboard = client.get("/editor/")
    assert "Clicks on the last issue" in dashboard.text
    assert re.search(r"example\.org/a</a>.*?Clicks\">3<", dashboard.text, re.S)


def test_the_empty_dashboard_walks_through_the_first_morning(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    page = client.get("/editor/").text
    assert "Your first morning" in page and "0 of 4 done" in page
    assert 'href="/editor/subscribers/import"' in page
    add_subscribers(ctx, 1)
    issue = new_issue(client, editor)
    page = client.get("/editor/").text
    assert "2 of 4 done" in page and f'href="/editor/issues/{issue["id"]}">Send a test' in page
    client.post(f"/editor/issues/{issue['id']}/test", data={"csrf_token": csrf})
    assert "3 of 4 done" in client.get("/editor/").text
    ctx.settings.postal_address = "1 Main St, Springfield"
    assert "Your first morning" not in client.get("/editor/").text  # all done: it goes


@pytest.mark.parametrize(
    ("written", "next_day"),
    [
        ("Tuesday, 3 March 2026", "Wednesday, 4 March 2026"),
        ("Saturday, 31 January 2026", "Sunday, 1 February 2026"),
        ("March 3rd, 2026", "March 4th, 2026"),
        ("2026-12-31", "2027-01-01"),
        ("Spring special", "Spring special"),
    ],
)
def test_next_morning_keeps_the_way_the_date_is_written(written: str, next_day: str) -> None:
    assert next_morning(written) == next_day


def test_duplicate_dates_the_copy_next_morning_and_the_list_finds_it(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str]
) -> None:
    masthead = {"type": "masthead", "date": "Tuesday, 3 March 2026"}
    source = new_issue(client, editor, blocks=[masthead, *SIMPLE_BLOCKS])
    r = client.post(f"/editor/issues/{source['id']}/duplicate", data={"csrf_token": csrf})
    assert r.status_code == 200 and "dated the next morning" in r.text
    assert "date: Wednesday, 4 March 2026" in r.text
    with session_scope(ctx.sessions) as session:
        copy = session.scalars(select(Issue).order_by(Issue.id.desc())).first()
        assert copy is not None and copy.subject == "The AI Morning Post (copy)"
        assert copy.blocks[0]["date"] == "Wednesday, 4 March 2026"
    new_issue(client, editor, subject="Something else entirely")
    listing = client.get("/editor/issues", params={"q": "morning copy"}).text
    assert "The AI Morning Post (copy)" in listing and "Something else" not in listing
    assert "Wednesday, 4 March 2026" in listing and "the-ai-morning-post-copy" in listing
    drafts = client.get("/editor/issues", params={"status": "sent"}).text
    assert "No issue matches." in drafts
    assert client.get("/editor/issues", params={"status": "bogus"}).status_code == 422


def test_subscribers_count_sort_and_act_in_bulk_after_a_confirmation(
    client: TestClient, ctx: Context, csrf: str
) -> None:
    ids = add_subscribers(ctx, 60)
    page = client.get("/editor/subscribers").text
    assert 'data-total="60"' in page and "page 1 of 2" in page
    by_email = client.get("/editor/subscribers", params={"sort": "email"}).text
    assert by_email.index("reader0@") < by_email.index("reader10@") < by_email.index("reader2@")
    newest = client.get("/editor/subscribers", params={"sort": "newest"}).text
    assert newest.index("reader59@") < newest.index("reader58@")
    assert 'data-total="11"' in client.get("/editor/subscribers", params={"q": "reader1"}).text
    chosen = [str(i) for i in ids[:3]]
    ask = client.post(
        "/editor/subscribers/bulk", data={"csrf_token": csrf, "action": "erase", "ids": chosen}
    )
    assert ask.status_code == 200 and "Erase 3 subscribers?" in ask.text
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Subscriber, ids[0]).email == "reader0@example.org"  # asked only
    forged = client.post("/editor/subscribers/bulk/apply", data={"action": "erase", "ids": chosen})
    assert forged.status_code == 403
    done = client.post(
        "/editor/subscribers/bulk/apply",
        data={"csrf_token": csrf, "action": "erase", "ids": chosen},
    )
    assert done.status_code == 200 and "are erased" in done.text
    assert 'data-total="57"' in done.text
    client.post(
        "/editor/subscribers/bulk/apply",
        data={"csrf_token": csrf, "action": "unsubscribe", "ids": [str(ids[3])]},
    )
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Subscriber, ids[3]).status == "unsubscribed"
    nothing = client.post("/editor/subscribers/bulk", data={"csrf_token": csrf, "action": "erase"})
    assert nothing.status_code == 422 and "Tick at least one" in nothing.text


def test_a_test_copys_links_work_before_the_issue_is_sent(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str], smtp_server: Any
) -> None:
    issue = new_issue(client, editor)
    client.post(f"/editor/issues/{issue['id']}/test", data={"csrf_token": csrf})
    run_worker(ctx)
    [received] = smtp_server.handler.received
    message = received.message()
    text = str(message.get_body(preferencelist=("plain",)).get_content())
    html = str(message.get_body(preferencelist=("html",)).get_content())
    web = re.search(r"Read on the web: (\S+)", text)
    assert web and "/preview/" in web.group(1), text
    assert web.group(1) in html  # the HTML part's link is the same signed preview
    path = "/" + web.group(1).split("/", 3)[3]
    page = client.get(path)
    assert page.status_code == 200 and "Hello readers" in page.text
    assert "not sent yet" in page.text and page.headers["x-robots-tag"] == "noindex"
    assert client.get(path[:-3] + "abc").status_code == 400  # tampered
    assert client.get(f"/archive/{issue['slug']}").status_code == 404  # not published
    prefs = re.search(r"/preferences/(\S+)", text)
    assert prefs, text
    shown = client.get(f"/preferences/{prefs.group(1)}")
    assert shown.status_code == 200 and "This link is from a test copy" in shown.text
    posted = client.post(f"/preferences/{prefs.group(1)}", data={"action": "leave"})
    assert posted.status_code == 200 and "nothing was changed" in posted.text


def test_a_deleted_drafts_test_copy_opens_nothing_of_the_next_issue(
    client: TestClient, ctx: Context, csrf: str, editor: dict[str, str], smtp_server: Any
) -> None:
    """SQLite gives a deleted draft's id to the next issue: the old test copy's preview link
    must not open it, and the next issue's test copy is its own text, not a cached one."""
    old = new_issue(client, editor, subject="The deleted draft")
    client.post(f"/editor/issues/{old['id']}/test", data={"csrf_token": csrf})
    worker = Worker(ctx, make_mailer(ctx.settings, ctx.engine))  # one worker, its cache kept
    asyncio.run(worker.run_until_idle())
    [first] = smtp_server.handler.received
    text = str(first.message().get_body(preferencelist=("plain",)).get_content())
    link = re.search(r"Read on the web: (\S+)", text)
    assert link, text
    path = "/" + link.group(1).split("/", 3)[3]
    assert client.get(path).status_code == 200
    assert client.delete(f"/issues/{old['id']}", headers=editor).status_code == 204
    new = new_issue(client, editor, subject="The next issue", slug="next-issue")
    assert client.get(path).status_code == 404, "the old link opens no other issue"
    client.post(f"/editor/issues/{new['id']}/test", data={"csrf_token": csrf})
    asyncio.run(worker.run_until_idle())
    second = smtp_server.handler.received[-1].message()
    assert "The next issue" in str(second["Subject"])


def test_an_import_names_rows_that_repeat_an_address_and_keeps_the_last(
    client: TestClient, ctx: Context, csrf: str
) -> None:
    body = "email,name\nann@example.org,Ann First\nbob@example.org,Bob\nANN@example.org,Ann Last\n"
    r = client.post(
        "/editor/subscribers/import",
        data={"csrf_token": csrf},
        files={"file": ("people.csv", body.encode(), "text/csv")},
    )
    assert r.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r.text))
    assert "Addresses that appear more than once" in text
    assert "4 ann@example.org row 2" in text  # row 4 repeats row 2 (row 1 is the header)
    with session_scope(ctx.sessions) as session:
        rows = {s.email: s.name for s in session.scalars(select(Subscriber))}
    assert rows == {"ann@example.org": "Ann Last", "bob@example.org": "Bob"}


def test_the_confirmation_email_greets_the_reader_by_name(
    client: TestClient, ctx: Context, smtp_server: Any
) -> None:
    r = client.post("/subscribe", json={"email": "ada@example.org", "name": "Ada <Lovelace>"})
    assert r.status_code == 202
    client.post("/subscribe", json={"email": "anon@example.org"})
    run_worker(ctx)
    by_to = {m.rcpt_tos[0]: m.message() for m in smtp_server.handler.wait_for(2)}
    ada = by_to["ada@example.org"]
    text = str(ada.get_body(preferencelist=("plain",)).get_content())
    html = str(ada.get_body(preferencelist=("html",)).get_content())
    assert "Hello Ada <Lovelace>," in text
    assert "Hello Ada &lt;Lovelace&gt;," in html  # escaped in HTML
    anon = str(by_to["anon@example.org"].get_body(preferencelist=("plain",)).get_content())
    assert "Hello," in anon
