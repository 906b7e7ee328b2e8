"""Subject A/B tests on the ledger: a sample split between subjects, the clicked one wins, the
rest get only the winner, and every reader gets exactly one copy; cancel and decide-now."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.automations.scheduler import ab_tick
from app.context import Context
from app.db import session_scope
from app.models import Delivery, Issue, utcnow
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer

LINK = re.compile(r'href="http://testserver(/l/[^"]+)"')
READERS = 40


def age_the_sends(ctx: Context) -> None:
    """Move every send into the past, out of the scanner window of clicks."""
    past = utcnow() - timedelta(minutes=5)
    with session_scope(ctx.sessions) as s:
        s.execute(update(Issue).values(started_at=past))
        s.execute(update(Delivery).where(Delivery.sent_at.is_not(None)).values(sent_at=past))


def by_subject(smtp_server: SMTPTestServer) -> dict[str, list[tuple[str, str]]]:
    """Return, per subject, (recipient, first link path) of every message received."""
    out: dict[str, list[tuple[str, str]]] = {}
    for received in list(smtp_server.handler.received):
        msg = received.message()
        html = msg.get_body(preferencelist=("html",))
        assert html is not None
        links = LINK.findall(html.get_content())
        out.setdefault(str(msg["Subject"]), []).append((received.rcpt_tos[0], links[0]))
    return out


def test_the_clicked_variant_wins_and_the_rest_get_only_the_winner(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    ctx.settings.track_readers = True
    add_subscribers(ctx, READERS)
    issue = new_issue(client, editor)
    ab = {"subjects": ["Alpha", "Bravo"], "sample_percent": 50, "decide_after": "PT1H"}
    resp = client.post(f"/issues/{issue['id']}/send", json={"ab": ab}, headers=editor)
    assert resp.status_code == 202, resp.text
    assert resp.json()["recipients"] == 20
    again = client.post(f"/issues/{issue['id']}/send", json={"ab": ab}, headers=editor)
    assert again.status_code == 409
    run_worker(ctx)
    sample = by_subject(smtp_server)
    assert {k: len(v) for k, v in sample.items()} == {"Alpha": 10, "Bravo": 10}

    age_the_sends(ctx)
    (_, link), (_, other) = sample["Bravo"][:2]
    for path in (link, link, other):  # one reader clicks twice: one unique click
        assert client.get(path, follow_redirects=False).status_code == 302
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert [
        (v["subject"], v["sent"], v["unique_clicks"], v["winner"]) for v in stats["variants"]
    ] == [
        ("Alpha", 10, 0, False),
        ("Bravo", 10, 2, False),
    ]
    assert ab_tick(ctx, utcnow() + timedelta(minutes=30)) == []  # not due yet
    assert ab_tick(ctx, utcnow() + timedelta(hours=2)) == [issue["id"]]
    run_worker(ctx)

    everyone = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert len(everyone) == READERS and set(everyone.values()) == {1}  # one copy each
    final = by_subject(smtp_server)
    assert len(final["Alpha"]) == 10 and len(final["Bravo"]) == 30
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert [v["winner"] for v in stats["variants"]] == [False, True]
    assert stats["status"] == "sent" and stats["sent"] == 20
    assert client.post(f"/issues/{issue['id']}/ab/decide", headers=editor).status_code == 409
    listed = [i["id"] for i in client.get("/issues", headers=editor).json()]
    assert listed == [issue["id"]]  # the variants' carriers are not issues of their own


def test_decide_now_with_a_subject_cancel_and_bad_input(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 10)
    issue = new_issue(client, editor)
    bad = [
        {"subjects": ["Only one"]},
        {"subjects": ["A", "B", "C", "D", "E"]},
        {"subjects": ["A", "B"], "sample_percent": 0},
        {"subjects": ["A", "B"], "decide_after": "two hours"},
        {"subjects": ["A", "B"], "metric": "opens"},
        {"subjects": ["A", "A"]},
    ]
    for ab in bad:
        resp = client.post(f"/issues/{issue['id']}/send", json={"ab": ab}, headers=editor)
        assert resp.status_code == 422, (ab, resp.text)
    ab = {"subjects": ["A", "B", "C"], "sample_percent": 30, "decide_after": "P1D"}
    assert (
        client.post(f"/issues/{issue['id']}/send", json={"ab": ab}, headers=editor).status_code
        == 202
    )
    wrong = client.post(f"/issues/{issue['id']}/ab/decide", json={"subject": "Z"}, headers=editor)
    assert wrong.status_code == 422
    resp = client.post(f"/issues/{issue['id']}/ab/decide", json={"subject": "C"}, headers=editor)
    assert resp.status_code == 200 and resp.json()["recipients"] == 7, resp.text
    run_worker(ctx)
    got = Counter(str(r.message()["Subject"]) for r in smtp_server.handler.received)
    assert got == Counter({"C": 8, "A": 1, "B": 1})

    # Cancelled before its decision: the carriers stop too and nothing more goes out.
    other = new_issue(client, editor, slug="second")
    assert (
        client.post(f"/issues/{other['id']}/send", json={"ab": ab}, headers=editor).status_code
        == 202
    )
    assert client.post(f"/issues/{other['id']}/cancel", headers=editor).status_code == 200
    assert ab_tick(ctx, utcnow() + timedelta(days=2)) == []
    with session_scope(ctx.sessions) as s:
        open_rows = s.scalar(
            select(Delivery.id).where(Delivery.status.in_(("pending", "retry", "sending")))
        )
    assert open_rows is None
