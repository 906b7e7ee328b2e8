"""The console's Sequences page: add one from drafts, see its timeline and numbers, pause,
resume, remove; and screenshots at both widths in both schemes (headless Chromium)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import Feed, Newsletter, Sequence
from tests.console_support import add_account, sign_in
from tests.helpers import new_issue
from tests.sequence_support import drafts


def test_the_console_adds_a_sequence_shows_its_steps_and_pauses_it(
    ctx: Context, client: TestClient
) -> None:
    add_account(ctx)
    csrf = sign_in(client)
    ids = drafts(ctx, "Welcome aboard", "Our best stories")
    form = {
        "csrf_token": csrf,
        "name": "Welcome series",
        "trigger": "confirmed",
        "issue0": str(ids[0]),
        "after0": "PT0S",
        "issue1": str(ids[1]),
        "after1": "P3D",
        "at1": "06:00",
        "issue2": "",
    }
    page = client.post("/editor/sequences", data=form)
    assert page.status_code == 200 and "The sequence is on" in page.text
    assert "Our best stories" in page.text and "at 06:00 reader's time" in page.text
    bad = client.post("/editor/sequences", data={**form, "after1": "three days"})
    assert bad.status_code == 422 and "ISO 8601" in bad.text
    assert client.post("/editor/sequences", data={**form, "csrf_token": ""}).status_code == 403
    with session_scope(ctx.sessions) as session:
        (seq_id,) = session.scalars(select(Sequence.id)).all()
    paused = client.post(f"/editor/sequences/{seq_id}/status", data={"csrf_token": csrf})
    assert "Paused" in paused.text and "Resume" in paused.text
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Sequence, seq_id).status == "paused"
    resumed = client.post(
        f"/editor/sequences/{seq_id}/status", data={"csrf_token": csrf, "status": "active"}
    )
    assert "Resumed" in resumed.text
    gone = client.post(f"/editor/sequences/{seq_id}/remove", data={"csrf_token": csrf})
    assert "The sequence is removed" in gone.text and "seq-head" not in gone.text


def test_the_console_adds_sequences_and_feeds_to_the_chosen_newsletter(
    ctx: Context, client: TestClient, editor: dict[str, str]
) -> None:
    """With several newsletters the forms name one; a step from another newsletter is refused."""
    made = client.post("/newsletters", json={"slug": "evening", "name": "Evening"}, headers=editor)
    assert made.status_code == 201, made.text
    evening = made.json()["id"]
    step = new_issue(client, editor, newsletter="evening")["id"]
    other = new_issue(client, editor, slug="default-draft")["id"]
    add_account(ctx)
    csrf = sign_in(client)
    page = client.get("/editor/sequences").text
    assert 'name="newsletter"' in page and ">Evening</option>" in page
    form = {
        "csrf_token": csrf,
        "name": "Evening welcome",
        "trigger": "confirmed",
        "newsletter": "evening",
        "issue0": str(other),
        "after0": "PT0S",
    }
    refused = client.post("/editor/sequences", data=form)
    assert refused.status_code == 422
    added = client.post("/editor/sequences", data={**form, "issue0": str(step)})
    assert added.status_code == 200 and "The sequence is on" in added.text
    feed = client.post(
        "/editor/feeds",
        data={
            "csrf_token": csrf,
            "url": "https://example.org/feed.xml",
            "every": "PT1H",
            "mode": "draft",
            "max_items": "10",
            "newsletter": "evening",
        },
    )
    assert feed.status_code == 200, feed.text
    with session_scope(ctx.sessions) as session:
        (seq_newsletter,) = session.scalars(select(Sequence.newsletter_id)).all()
        (feed_newsletter,) = session.scalars(select(Feed.newsletter_id)).all()
        assert session.get_one(Newsletter, evening).slug == "evening"
    assert seq_newsletter == feed_newsletter == evening
