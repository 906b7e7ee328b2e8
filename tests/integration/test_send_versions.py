"""One send is one version (issue 17, item 4): the content is frozen when the send starts.

Every reader gets what was frozen, whatever the live row says later (a racing edit, a worker
restart, a later wave, resend-unknown), and an edit that loses the race to the start is a 409.
The races are driven with events, not timing: one side is held inside the renderer (the point
between its read and its write) while the other side commits.

On SQLite every transaction takes the write lock at BEGIN (app/db.py), so a read and a write of
one request cannot straddle another writer's commit: the interleaved races run on PostgreSQL.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.context import Context
from app.db import session_scope
from app.editors import create_editor_token
from app.issues.dispatch import dispatch
from app.issues.service import send_gate
from app.models import Delivery, DeliveryStatus, Issue, utcnow
from app.rendering.compile import CompiledEmail
from app.sends.store.sends import start_due_issues
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.local_time_support import ZONES, deliver_at, local_readers
from tests.smtp_server import SMTPTestServer

FIRST = "The first version"
EDITED = "An edit that came too late"
WAIT = 30.0  # seconds an event may take on a loaded machine before the test gives up

needs_row_locks = pytest.mark.skipif(
    not os.environ.get("MORNINGPOST_TEST_DATABASE_URL", "").strip(),
    reason="SQLite serialises whole transactions (BEGIN IMMEDIATE): this interleaving "
    "cannot happen there",
)


def _subjects(smtp_server: SMTPTestServer) -> Counter[str]:
    return Counter(str(r.message()["Subject"]) for r in smtp_server.handler.received)


def _edit_live_row(ctx: Context, issue_id: int, subject: str) -> None:
    """Change the issue row behind the service's back, as an edit that won a race would."""
    with session_scope(ctx.sessions) as session:
        session.execute(update(Issue).where(Issue.id == issue_id).values(subject=subject))


class Hold:
    """Hold the first render off the main thread until released: a request's read-write gap."""

    def __init__(self, ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self.seen: list[str] = []  # subjects rendered by the held request
        self._armed = False
        self._lock = threading.Lock()
        original = ctx.renderer.compile_issue

        def compile_issue(**kwargs: Any) -> CompiledEmail:
            with self._lock:
                hold = self._armed and threading.current_thread() is not threading.main_thread()
                self._armed = self._armed and not hold
            if hold:
                self.seen.append(kwargs["subject"])
                self.reached.set()
                assert self.release.wait(WAIT), "the test never released the held request"
            return original(**kwargs)

        monkeypatch.setattr(ctx.renderer, "compile_issue", compile_issue)

    def arm(self) -> None:
        """Hold the next render made off the main thread (the racing request's)."""
        with self._lock:
            self._armed = True


@pytest.fixture
def hold(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hold]:
    """Return a Hold on the context's renderer; released at the end whatever happened."""
    h = Hold(ctx, monkeypatch)
    yield h
    h.release.set()


@pytest.fixture
def other_editor(ctx: Context) -> dict[str, str]:
    """Return a second editor's header (a request holds its own token's row while it runs)."""
    with session_scope(ctx.sessions) as session:
        return {"Authorization": f"Bearer {create_editor_token(session, 'other')}"}


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def test_a_started_send_sends_only_its_frozen_version(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 5)
    issue = new_issue(client, editor, subject=FIRST)
    sent = client.post(f"/issues/{issue['id']}/send", headers=editor)
    assert sent.status_code == 202 and sent.json()["status"] == "sending"
    late = client.patch(f"/issues/{issue['id']}", json={"subject": EDITED}, headers=editor)
    assert late.status_code == 409
    # The live row changes anyway (an edit that slipped past the check, a hand in the
    # database): the worker (a fresh one, as after a restart) sends what was frozen.
    _edit_live_row(ctx, issue["id"], EDITED)
    run_worker(ctx)
    assert _subjects(smtp_server) == Counter({FIRST: 5})

    # resend-unknown sends the frozen version too.
    with session_scope(ctx.sessions) as session:
        first = session.scalars(
            select(Delivery.id).where(Delivery.issue_id == issue["id"]).order_by(Delivery.id)
        ).first()
        session.execute(
            update(Delivery).where(Delivery.id == first).values(status=DeliveryStatus.unknown)
        )
    again = client.post(f"/issues/{issue['id']}/resend-unknown", headers=editor)
    assert again.json() == {"requeued": 1}
    run_worker(ctx)
    assert _subjects(smtp_server) == Counter({FIRST: 6})


def test_local_time_waves_send_the_version_frozen_at_the_first_wave(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    local_readers(ctx)
    day = (utcnow() + timedelta(days=3)).date()
    issue = new_issue(client, editor, subject=FIRST)
    body = {"local_time": "06:00", "date": day.isoformat()}
    assert client.post(f"/issues/{issue['id']}/send", json=body, headers=editor).status_code == 202
    six = datetime(day.year, day.month, day.day, 6, tzinfo=UTC) + timedelta(minutes=1)
    deliver_at(ctx, six - timedelta(hours=9))  # Tokyo's morning: the send starts
    assert _subjects(smtp_server) == Counter({FIRST: 1})
    _edit_live_row(ctx, issue["id"], EDITED)
    deliver_at(ctx, six + timedelta(hours=5))  # every other morning has come
    assert _subjects(smtp_server) == Counter({FIRST: len(ZONES)})


@needs_row_locks
def test_a_patch_that_loses_the_race_to_the_send_start_is_409(
    client: TestClient,
    editor: dict[str, str],
    ctx: Context,
    smtp_server: SMTPTestServer,
    hold: Hold,
) -> None:
    add_subscribers(ctx, 5)
    issue = new_issue(client, editor, subject=FIRST)
    later = (utcnow() + timedelta(hours=1)).isoformat()
    scheduled = client.post(f"/issues/{issue['id']}/send", json={"send_at": later}, headers=editor)
    assert scheduled.json()["status"] == "scheduled"
    # The PATCH reads `scheduled`, then is held before it writes ...
    hold.arm()
    patch, answer = _in_thread(
        lambda: client.patch(f"/issues/{issue['id']}", json={"subject": EDITED}, headers=editor)
    )
    assert hold.reached.wait(WAIT)
    # ... while the morning cron starts the send and commits.
    assert dispatch(ctx, utcnow() + timedelta(hours=2)) == [issue["id"]]
    hold.release.set()
    patch.join(WAIT)
    assert answer[0].status_code == 409, answer[0].text
    now = client.get(f"/issues/{issue['id']}", headers=editor).json()
    assert (now["status"], now["subject"]) == ("sending", FIRST)
    run_worker(ctx)
    assert _subjects(smtp_server) == Counter({FIRST: 5})


@needs_row_locks
def test_the_send_start_refuses_an_edit_committed_after_its_check(
    client: TestClient,
    editor: dict[str, str],
    ctx: Context,
    smtp_server: SMTPTestServer,
    hold: Hold,
    other_editor: dict[str, str],
) -> None:
    add_subscribers(ctx, 5)
    issue = new_issue(client, editor, subject=FIRST)
    # POST /send is held inside its pre-send check (it has read FIRST) ...
    hold.arm()
    send, answer = _in_thread(lambda: client.post(f"/issues/{issue['id']}/send", headers=editor))
    assert hold.reached.wait(WAIT)
    # ... while another editor saves a new subject, which commits.
    edit = client.patch(f"/issues/{issue['id']}", json={"subject": EDITED}, headers=other_editor)
    assert edit.status_code == 200
    hold.release.set()
    send.join(WAIT)
    # The send would go out with text its check never saw: it is refused, nothing is frozen.
    assert answer[0].status_code == 409, answer[0].text
    assert hold.seen == [FIRST]
    assert client.get(f"/issues/{issue['id']}", headers=editor).json()["status"] == "draft"
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202
    run_worker(ctx)
    assert _subjects(smtp_server) == Counter({EDITED: 5})


@needs_row_locks
def test_a_scheduled_start_sends_only_what_its_gate_checked(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 5)
    issue = new_issue(client, editor, subject=FIRST)
    later = (utcnow() + timedelta(hours=1)).isoformat()
    client.post(f"/issues/{issue['id']}/send", json={"send_at": later}, headers=editor)
    checked: list[str] = []
    real_gate = send_gate(ctx.renderer)
    edits = iter([EDITED])

    def gate(session: Session, issue_id: int) -> str | None:
        checked.append(session.get_one(Issue, issue_id).subject)
        refusal = real_gate(session, issue_id)
        # Between the check and the start, an editor's save commits (once).
        subject = next(edits, None)
        if subject is not None:
            r = client.patch(f"/issues/{issue_id}", json={"subject": subject}, headers=editor)
            assert r.status_code == 200, r.text
        return refusal

    due = utcnow() + timedelta(hours=2)
    started: list[int] = []
    for _ in range(2):  # the worker polls again; the edited version gets its own check
        with session_scope(ctx.sessions) as session:
            started += start_due_issues(session, due, gate)
    assert started == [issue["id"]]
    run_worker(ctx)
    assert _subjects(smtp_server) == Counter({checked[-1]: 5})
    assert checked[-1] == EDITED
