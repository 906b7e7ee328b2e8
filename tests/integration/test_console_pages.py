"""Console pages over the real services: issues, results, subscribers, suppressions, settings."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.console import block_form
from app.console.queries import issue_recipients
from app.context import Context
from app.db import session_scope
from app.issues.markdown_format import parse_issue_markdown
from app.models import BounceEvent, Delivery, Issue, OutboxMessage, Subscriber, Suppression
from app.rendering.blocks import parse_blocks
from tests.console_support import add_account, sign_in
from tests.helpers import ROOT, add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer

MARKDOWN = """---
subject: The Specialization Wave
preheader: Small models, big gains
---
## Domain-Specific AI Models Challenge One-Size-Fits-All {lead}
From Arabic speech recognition to **mathematical reasoning**.

## Subscribe to AI Morning Post {subscribe}
Get daily AI insights delivered every morning.
"""


@pytest.fixture
def csrf(client: TestClient, ctx: Context) -> str:
    """Sign the client in as an editor and return the session's CSRF token."""
    add_account(ctx)
    return sign_in(client)


def _issue_id(location: str) -> int:
    found = re.search(r"/editor/issues/(\d+)", location)
    assert found, location
    return int(found.group(1))


def test_write_preview_test_schedule_send_and_see_results(
    client: TestClient, ctx: Context, csrf: str, smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 3)
    live = client.post(
        "/editor/issues/preview-markdown", data={"markdown": MARKDOWN, "csrf_token": csrf}
    )
    assert live.status_code == 200 and "Arabic speech recognition" in live.text
    assert live.headers["x-frame-options"] == "SAMEORIGIN"
    broken = client.post(
        "/editor/issues/preview-markdown", data={"markdown": "no front matter", "csrf_token": csrf}
    )
    assert "line 1" in broken.text

    created = client.post(
        "/editor/issues", data={"markdown": MARKDOWN, "csrf_token": csrf}, follow_redirects=False
    )
    assert created.status_code == 303
    issue_id = _issue_id(created.headers["location"])
    page = client.get(f"/editor/issues/{issue_id}")
    assert "The Specialization Wave" in page.text and "Pre-send check" in page.text
    both = client.get(f"/editor/issues/{issue_id}/preview")
    assert 'width="375"' in both.text and 'width="620"' in both.text
    assert "Arabic speech" in client.get(f"/editor/issues/{issue_id}/preview.html").text

    tested = client.post(f"/editor/issues/{issue_id}/test", data={"csrf_token": csrf})
    assert "A test copy is on its way." in tested.text
    with session_scope(ctx.sessions) as session:
        [test_copy] = session.scalars(select(OutboxMessage)).all()
        assert test_copy.to_address == "ed@example.org" and test_copy.kind == "test"

    scheduled = client.post(
        f"/editor/issues/{issue_id}/schedule",
        data={"csrf_token": csrf, "send_at": "2099-01-02T06:00"},
    )
    assert "The issue is scheduled." in scheduled.text and "2099-01-02 06:00 UTC" in scheduled.text
    past = client.post(
        f"/editor/issues/{issue_id}/schedule",
        data={"csrf_token": csrf, "send_at": "2001-01-01T06:00"},
    )
    assert past.status_code == 422 and "That time has passed" in past.text
    dashboard = client.get("/editor/").text
    assert "2099-01-02 06:00 UTC" in dashboard  # the dashboard lists it
    assert "<strong>3</strong> readers would get an issue sent now" in dashboard

    confirm = client.get(f"/editor/issues/{issue_id}/send")
    assert "Send to 3 readers" in confirm.text
    sent = client.post(f"/editor/issues/{issue_id}/send", data={"csrf_token": csrf})
    assert sent.url.path == f"/editor/issues/{issue_id}/results"
    again = client.post(f"/editor/issues/{issue_id}/send", data={"csrf_token": csrf})
    assert again.status_code == 409 and "never sent twice" in again.text

    progress = client.get(f"/editor/progress.json?ids={issue_id}").json()
    assert progress[str(issue_id)]["recipients"] == 3
    run_worker(ctx)
    smtp_server.handler.wait_for(4)  # the test copy and three deliveries

    results = client.get(f"/editor/issues/{issue_id}/results")
    assert results.status_code == 200
    assert results.text.count("reader") >= 3 and "badge-sent" in results.text
    found = client.get(f"/editor/issues/{issue_id}/results?q=reader1%40&status=sent")
    assert "reader1@example.org" in found.text and "reader2@example.org" not in found.text
    assert "250" in found.text  # the relay's last reply
    with session_scope(ctx.sessions) as session:
        reader = session.scalars(
            select(Subscriber.id).where(Subscriber.email == "reader1@example.org")
        ).one()
    history = client.get(f"/editor/subscribers/{reader}")
    assert "Issues sent to this reader" in history.text
    assert "The Specialization Wave" in history.text and "250" in history.text
    assert "The Specialization Wave" in client.get("/editor/").text


def test_user_text_is_escaped_everywhere(
    client: TestClient, editor: dict[str, str], csrf: str, ctx: Context
) -> None:
    evil = "<script>alert(1)</script>"
    issue = new_issue(client, editor, subject=f"Hi {evil}")
    with session_scope(ctx.sessions) as session:
        session.add(
            Subscriber(email="x@example.org", email_hash="0" * 64, name=evil, status="active")
        )
    pages = [
        "/editor/",
        "/editor/issues",
        f"/editor/issues/{issue['id']}",
        f"/editor/issues/{issue['id']}/edit",
        f"/editor/issues/{issue['id']}/blocks",
        f"/editor/issues/{issue['id']}/send",
        f"/editor/issues/{issue['id']}/results?q={evil}",
        f"/editor/subscribers?q={evil}",
        "/editor/subscribers/1",
    ]
    for path in pages:
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert evil not in resp.text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in resp.text, path
    bad = client.post(
        "/editor/issues", data={"markdown": f"---\nsubject: x\n---\n{evil}", "csrf_token": csrf}
    )
    assert bad.status_code == 422 and evil not in bad.text


def test_markdown_mistake_keeps_the_text_and_names_the_line(client: TestClient, csrf: str) -> None:
    text = "---\nsubject: Draft\n---\nstray words\n"
    resp = client.post("/editor/issues", data={"markdown": text, "csrf_token": csrf})
    assert resp.status_code == 422
    assert "line 4" in resp.text
    assert "stray words" in resp.text  # nothing typed is lost


def test_block_editor_reorders_removes_and_adds(
    client: TestClient, editor: dict[str, str], csrf: str, ctx: Context
) -> None:
    issue = new_issue(client, editor)  # lead, links
    form = {
        "csrf_token": csrf,
        "count": "2",
        "subject": "Reordered",
        "preheader": "Now with stats",
        "b0-type": "lead",
        "b0-pos": "2",
        "b0-title": "Hello readers",
        "b0-body": "First **issue**.",
        "b1-type": "links",
        "b1-pos": "1",
        "b1-title": "Read",
        "b1-items": "A | | https://example.org/a\nB | the second | https://example.org/b",
    }
    added = client.post(
        f"/editor/issues/{issue['id']}/blocks", data={**form, "action": "add", "new_type": "stats"}
    )
    assert added.status_code == 200 and added.text.count('class="card block-card"') == 3
    saved = client.post(f"/editor/issues/{issue['id']}/blocks", data={**form, "action": "save"})
    assert saved.url.path == f"/editor/issues/{issue['id']}"
    with session_scope(ctx.sessions) as session:
        row = session.get(Issue, issue["id"])
        assert row is not None and row.subject == "Reordered"
        assert [b["type"] for b in row.blocks] == ["links", "lead"]
        assert row.blocks[0]["items"][1] == {
            "title": "B",
            "description": "the second",
            "url": "https://example.org/b",
        }
    removed = client.post(
        f"/editor/issues/{issue['id']}/blocks",
        data={**form, "b0-remove": "1", "action": "save"},
    )
    assert removed.status_code == 200
    with session_scope(ctx.sessions) as session:
        row = session.get(Issue, issue["id"])
        assert row is not None and [b["type"] for b in row.blocks] == ["links"]
    invalid = client.post(
        f"/editor/issues/{issue['id']}/blocks", data={**form, "b0-title": "", "action": "save"}
    )
    assert invalid.status_code == 422 and "title" in invalid.text


def test_pause_resume_and_cancel(
    client: TestClient, editor: dict[str, str], csrf: str, ctx: Context
) -> None:
    add_subscribers(ctx, 2)
    issue = new_issue(client, editor)
    client.post(f"/editor/issues/{issue['id']}/send", data={"csrf_token": csrf})
    paused = client.post(f"/editor/issues/{issue['id']}/pause", data={"csrf_token": csrf})
    assert "The send is paused" in paused.text and "badge-paused" in paused.text
    resumed = client.post(f"/editor/issues/{issue['id']}/resume", data={"csrf_token": csrf})
    assert "The send continues" in resumed.text
    confirm = client.get(f"/editor/issues/{issue['id']}/cancel")
    assert "cannot be restarted" in confirm.text and "Cancel the send</button>" in confirm.text
    cancelled = client.post(f"/editor/issues/{issue['id']}/cancel", data={"csrf_token": csrf})
    assert "The send is cancelled" in cancelled.text
    refused = client.post(f"/editor/issues/{issue['id']}/resume", data={"csrf_token": csrf})
    assert refused.status_code == 409 and 'role="alert"' in refused.text


def test_subscribers_add_edit_search_import_export_erase(
    client: TestClient, csrf: str, ctx: Context
) -> None:
    added = client.post(
        "/editor/subscribers",
        data={"csrf_token": csrf, "email": "Ada@Example.org", "name": "Ada", "status": "active"},
    )
    assert "The subscriber is added." in added.text and "ada@example.org" in added.text
    dup = client.post("/editor/subscribers", data={"csrf_token": csrf, "email": "ada@example.org"})
    assert dup.status_code == 409 and "already exists" in dup.text
    with session_scope(ctx.sessions) as session:
        ada = session.scalars(select(Subscriber)).one().id
    edited = client.post(
        f"/editor/subscribers/{ada}",
        data={
            "csrf_token": csrf,
            "email": "ada@example.org",
            "name": "Ada L.",
            "status": "unsubscribed",
        },
    )
    assert "The changes are saved." in edited.text and "Ada L." in edited.text

    csv_body = "email,name\nbob@example.org,Bob\nnot-an-address,X\n"
    imported = client.post(
        "/editor/subscribers/import",
        data={"csrf_token": csrf},
        files={"file": ("list.csv", csv_body.encode(), "text/csv")},
    )
    assert imported.status_code == 200
    assert "Rejected rows" in imported.text and "not-an-address" in imported.text
    listing = client.get("/editor/subscribers?status=active&q=bob")
    assert "bob@example.org" in listing.text and "ada@example.org" not in listing.text
    export = client.get("/editor/subscribers/export.csv")
    assert export.headers["content-type"].startswith("text/csv")
    assert "bob@example.org,Bob,active" in export.text
    # The API's export: it imports again with tags, newsletters and attributes.
    assert export.text.splitlines()[0].startswith(
        "email,name,status,timezone,created_at,confirmed_at,tags,newsletters"
    )

    assert "Erase for good" in client.get(f"/editor/subscribers/{ada}/erase").text
    erased = client.post(f"/editor/subscribers/{ada}/erase", data={"csrf_token": csrf})
    assert "erased" in erased.text and "ada@example.org" not in erased.text
    with session_scope(ctx.sessions) as session:
        assert session.get(Subscriber, ada) is None
        assert session.scalars(select(Suppression.reason)).all() == ["erased"]


def test_suppressions_add_remove_export(client: TestClient, csrf: str, ctx: Context) -> None:
    added = client.post(
        "/editor/suppressions",
        data={"csrf_token": csrf, "email": "gone@example.org", "reason": "complaint"},
    )
    assert "The address is on the suppression list." in added.text
    again = client.post(
        "/editor/suppressions", data={"csrf_token": csrf, "email": "gone@example.org"}
    )
    assert again.status_code == 409
    export = client.get("/editor/suppressions/export.csv")
    assert "complaint" in export.text and "gone@example.org" not in export.text
    found = client.get("/editor/suppressions?email=Gone%40Example.org")
    assert "complaint" in found.text and "Remove</button>" in found.text
    other = client.get("/editor/suppressions?email=kept%40example.org")
    assert "kept@example.org is not suppressed." in other.text
    with session_scope(ctx.sessions) as session:
        entry = session.scalars(select(Suppression)).one().id
    lifted = client.post(f"/editor/suppressions/{entry}/remove", data={"csrf_token": csrf})
    assert "The suppression is lifted" in lifted.text
    assert "The list is empty." in lifted.text


def test_settings_show_no_secrets(client: TestClient, csrf: str, ctx: Context) -> None:
    page = client.get("/editor/settings")
    assert page.status_code == 200
    assert "news@morningpost.test" in page.text and "http://testserver" in page.text
    assert "_dmarc.morningpost.test" in page.text
    for secret in ctx.settings.secret_keys:
        assert secret not in page.text


def test_block_form_round_trips_the_sample_issue() -> None:
    data = parse_issue_markdown((ROOT / "examples" / "ai-morning-post.md").read_text())
    blocks = parse_blocks(data.blocks)
    sections = [block_form.to_form(b) for b in blocks]
    # Opinion pieces have paragraphs: their items are edited as JSON, losing nothing.
    assert [s.type for s in sections if s.items_as_json] == ["opinion"]
    again = [block_form.to_block(s, n) for n, s in enumerate(sections, start=1)]
    assert parse_blocks(again) == blocks


def test_recipients_are_keyset_paged_and_filtered(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    add_subscribers(ctx, 5)
    issue = new_issue(client, editor)
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202
    with session_scope(ctx.sessions) as session:
        seen: list[str] = []
        after: str | None = None
        while True:
            rows, after = issue_recipients(
                session, issue["id"], status="pending", after=after, limit=2
            )
            seen += [r.email or "" for r in rows]
            if after is None:
                break
        assert seen == [f"reader{i}@example.org" for i in range(5)]
        assert issue_recipients(session, issue["id"], status="sent")[0] == []
        [one], _ = issue_recipients(session, issue["id"], q="READER3")
        assert one.email == "reader3@example.org"
        # LIKE wildcards in the search are taken literally.
        assert issue_recipients(session, issue["id"], q="reader_")[0] == []


def test_refusals_are_console_pages(client: TestClient, csrf: str) -> None:
    missing = client.get("/editor/issues/999")
    assert missing.status_code == 404
    assert "No issue 999." in missing.text and "Back to the dashboard" in missing.text
    assert missing.headers["x-frame-options"] == "DENY"
    forged = client.post("/editor/subscribers", data={"csrf_token": "forged", "email": "a@b.org"})
    assert forged.status_code == 403 and "nothing changed" in forged.text


def test_results_show_bounces_and_alerts(
    client: TestClient, editor: dict[str, str], csrf: str, ctx: Context
) -> None:
    add_subscribers(ctx, 2)
    issue = new_issue(client, editor)
    client.post(f"/editor/issues/{issue['id']}/send", data={"csrf_token": csrf})
    client.post(f"/editor/issues/{issue['id']}/cancel", data={"csrf_token": csrf})
    refusal = "550 5.7.1 Message rejected by policy <b>"
    with session_scope(ctx.sessions) as session:
        first = session.scalars(select(Delivery.id).order_by(Delivery.id)).first()
        session.add(
            BounceEvent(delivery_id=first, kind="policy", diagnostic=refusal, source="smtp")
        )
        session.add(
            BounceEvent(delivery_id=first, kind="hard", diagnostic="550 5.1.1", source="smtp")
        )
    results = client.get(f"/editor/issues/{issue['id']}/results")
    assert "Alerts" in results.text
    assert "550 5.7.1 Message rejected by policy &lt;b&gt;" in results.text
    assert re.search(r'tile-n"[^>]*>1</span><span class="tile-l">bounced', results.text)
    assert "550 5.7.1 Message rejected by policy &lt;b&gt;" in client.get("/editor/").text


def test_duplicate_starts_a_new_draft(
    client: TestClient, editor: dict[str, str], csrf: str, ctx: Context
) -> None:
    issue = new_issue(client, editor, slug="monday", preheader="Start of the week")
    copy = client.post(f"/editor/issues/{issue['id']}/duplicate", data={"csrf_token": csrf})
    assert copy.status_code == 200 and copy.url.path.endswith("/edit")
    with session_scope(ctx.sessions) as session:
        rows = session.scalars(select(Issue).order_by(Issue.id)).all()
        assert len(rows) == 2
        assert rows[1].status == "draft" and rows[1].blocks == rows[0].blocks
        assert rows[1].preheader == "Start of the week" and rows[1].slug != "monday"


def test_send_at_each_readers_local_time(
    client: TestClient, editor: dict[str, str], csrf: str, ctx: Context
) -> None:
    add_subscribers(ctx, 3)
    issue = new_issue(client, editor)
    page = client.get(f"/editor/issues/{issue['id']}").text
    assert "own time" in page and 'action="/editor/issues/' in page
    bad = client.post(
        f"/editor/issues/{issue['id']}/send-local",
        data={"csrf_token": csrf, "local_time": "6 am", "local_date": "2099-12-01"},
    )
    # The API's own words (SendIn reads the form too).
    assert bad.status_code == 422 and "local_time: Input should be in a valid time" in bad.text
    forged = client.post(
        f"/editor/issues/{issue['id']}/send-local",
        data={"local_time": "06:00", "local_date": "2099-12-01"},
    )
    assert forged.status_code == 403  # no CSRF token: refused, nothing changed
    done = client.post(
        f"/editor/issues/{issue['id']}/send-local",
        data={"csrf_token": csrf, "local_time": "06:00", "local_date": "2099-12-01"},
    )
    assert "in their own time zone" in done.text
    got = client.get(f"/issues/{issue['id']}", headers=editor).json()
    assert got["status"] == "scheduled" and got["send_at"].startswith("2099-12-01T06:00")
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["recipients"] == 3 and stats["not_yet_due"] == 3
