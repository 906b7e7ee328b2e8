"""A newsletter names its relay (issue 21): its issues go through that relay alone.

Real SMTP servers count what arrives where. When the chosen relay cannot send, that
newsletter's send pauses naming the relay (no fallback to another), and resumes by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.audience.newsletters import set_subscription
from app.config import Settings
from app.context import Context, build_context
from app.db import session_scope
from app.delivery import build_worker
from app.editors import create_editor_token
from app.main import create_app
from app.models import Issue, SubscriptionStatus, utcnow
from app.sends.smtp.mailer import make_mailer
from tests.helpers import add_subscribers, new_issue
from tests.smtp_server import SMTPTestServer


@pytest.fixture
def pair() -> Iterator[list[SMTPTestServer]]:
    """Two real SMTP servers of this test's own."""
    servers = [SMTPTestServer().start() for _ in range(2)]
    yield servers
    for s in servers:
        s.stop()


def relay_ctx(ctx: Context, smtp_url: str, **more: object) -> Context:
    """Return the test's context with these relays (short rests)."""
    settings = ctx.settings.model_copy(
        update={"smtp_url": smtp_url, "relay_rest_seconds": 0.3, **more}
    )
    return build_context(Settings.model_validate(settings.model_dump()), engine=ctx.engine)


@contextmanager
def api(rctx: Context) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """Return a client on an app with these relays, and an editor's header."""
    app = create_app(rctx.settings, context=rctx)
    with TestClient(app, base_url="http://testserver", client=("127.0.0.1", 50000)) as client:
        with session_scope(rctx.sessions) as session:
            token = create_editor_token(session, "relays")
        yield client, {"Authorization": f"Bearer {token}"}


def newsletter(client: TestClient, editor: dict[str, str], slug: str, **fields: Any) -> int:
    """Create a newsletter through the API; return its id."""
    body = {"slug": slug, "name": slug.title(), **fields}
    resp = client.post("/newsletters", json=body, headers=editor)
    assert resp.status_code == 201, resp.text
    assert resp.json()["relay"] == fields.get("relay")
    return int(resp.json()["id"])


def readers(ctx: Context, count: int, newsletter_id: int, domain: str) -> list[str]:
    """Add active readers of one newsletter; return their addresses."""
    ids = add_subscribers(ctx, count, domain=domain)
    with session_scope(ctx.sessions) as session:
        for sid in ids:
            set_subscription(session, sid, newsletter_id, SubscriptionStatus.active, utcnow())
    return [f"reader{i}@{domain}" for i in range(count)]


def send(client: TestClient, editor: dict[str, str], slug: str) -> int:
    """Create an issue of a newsletter and start its send; return its id."""
    issue = new_issue(client, editor, subject=f"News of {slug}", newsletter=slug)
    resp = client.post(f"/issues/{issue['id']}/send", headers=editor)
    assert resp.status_code == 202, resp.text
    return int(issue["id"])


def deliver(rctx: Context) -> None:
    """Run a worker with these relays until nothing is due."""
    asyncio.run(build_worker(rctx, make_mailer(rctx.settings, rctx.engine)).run_until_idle())


def arrived(server: SMTPTestServer, domain: str) -> Counter[str]:
    """Return the copies a server took for readers of one domain."""
    return Counter(
        r.rcpt_tos[0] for r in server.handler.received if r.rcpt_tos[0].endswith(f"@{domain}")
    )


def issue_row(ctx: Context, issue_id: int) -> Issue:
    """Return the issue as stored now."""
    with session_scope(ctx.sessions) as session:
        issue = session.get_one(Issue, issue_id)
        session.expunge(issue)
        return issue


def test_the_relay_is_part_of_a_newsletter_and_an_unknown_one_is_refused_naming_them(
    ctx: Context, pair: list[SMTPTestServer]
) -> None:
    x, y = pair
    rctx = relay_ctx(ctx, f"{x.url}?name=xray,{y.url}?name=yankee")
    with api(rctx) as (client, editor):
        nid = newsletter(client, editor, "alpha", relay="xray")
        assert client.get(f"/newsletters/{nid}", headers=editor).json()["relay"] == "xray"
        listed = {n["slug"]: n["relay"] for n in client.get("/newsletters", headers=editor).json()}
        assert listed == {"default": None, "alpha": "xray"}

        bad = client.patch(f"/newsletters/{nid}", json={"relay": "zulu"}, headers=editor)
        assert bad.status_code == 422, bad.text
        text = bad.text
        assert "zulu" in text and "'xray'" in text and "'yankee'" in text
        assert client.get(f"/newsletters/{nid}", headers=editor).json()["relay"] == "xray"
        refused = client.post(
            "/newsletters", json={"slug": "b", "name": "B", "relay": "zulu"}, headers=editor
        )
        assert refused.status_code == 422 and "'yankee'" in refused.text

        moved = client.patch(f"/newsletters/{nid}", json={"relay": "yankee"}, headers=editor)
        assert moved.status_code == 200 and moved.json()["relay"] == "yankee"
        back = client.patch(f"/newsletters/{nid}", json={"relay": None}, headers=editor)
        assert back.status_code == 200 and back.json()["relay"] is None


def test_a_newsletters_issue_goes_only_through_its_relay_and_the_others_spread(
    ctx: Context, pair: list[SMTPTestServer]
) -> None:
    x, y = pair
    rctx = relay_ctx(ctx, f"{x.url}?name=xray,{y.url}?name=yankee")
    with api(rctx) as (client, editor):
        a = newsletter(client, editor, "alpha", relay="xray")
        b = newsletter(client, editor, "bravo")
        c = newsletter(client, editor, "charlie", relay="yankee")
        of_a = readers(ctx, 20, a, "a.example.org")
        of_b = readers(ctx, 40, b, "b.example.org")
        of_c = readers(ctx, 10, c, "c.example.org")
        ids = [send(client, editor, slug) for slug in ("alpha", "bravo", "charlie")]

    deliver(rctx)

    assert all(issue_row(ctx, i).status == "sent" for i in ids)
    assert arrived(x, "a.example.org") == Counter(of_a), "A's issue: every copy at xray"
    assert not arrived(y, "a.example.org"), "and none at yankee"
    assert arrived(y, "c.example.org") == Counter(of_c) and not arrived(x, "c.example.org")
    # B names no relay: the pool spreads it (equal weights) over both, one copy each.
    spread = arrived(x, "b.example.org"), arrived(y, "b.example.org")
    assert spread[0] + spread[1] == Counter(of_b)
    assert spread[0] and spread[1], [len(s) for s in spread]


def test_a_down_relay_pauses_only_its_newsletter_naming_it_and_never_falls_back(
    ctx: Context, pair: list[SMTPTestServer]
) -> None:
    x, y = pair
    x.stop()  # xray refuses connections
    rctx = relay_ctx(ctx, f"{x.url}?name=xray,{y.url}?name=yankee")
    with api(rctx) as (client, editor):
        a = newsletter(client, editor, "alpha", relay="xray")
        b = newsletter(client, editor, "bravo")
        of_a = readers(ctx, 12, a, "a.example.org")
        of_b = readers(ctx, 12, b, "b.example.org")
        issue_a, issue_b = send(client, editor, "alpha"), send(client, editor, "bravo")

    deliver(rctx)

    paused = issue_row(ctx, issue_a)
    assert paused.status == "paused"
    reason = paused.pause_reason or ""
    assert reason.startswith("paused: relay xray cannot send now: "), reason
    assert "yankee" not in reason, reason
    assert not arrived(y, "a.example.org"), "no fallback to a relay the editor did not choose"
    # The other newsletter's send went on through the relay that works.
    assert issue_row(ctx, issue_b).status == "sent"
    assert arrived(y, "b.example.org") == Counter(of_b)

    # xray comes back on its port: once its rest ends the pool resumes A's send by itself.
    x.controller = Controller(x.handler, hostname="127.0.0.1", port=x.port)
    x.controller.start()
    for _ in range(50):
        if issue_row(ctx, issue_a).status == "sent":
            break
        deliver(rctx)
        time.sleep(0.1)  # a beat for xray's rest (0.3 s) to end
    assert issue_row(ctx, issue_a).status == "sent"
    assert arrived(x, "a.example.org") == Counter(of_a), "every reader of A one copy, at xray"
    assert not arrived(y, "a.example.org")
    with session_scope(ctx.sessions) as session:
        kept = session.scalars(select(Issue.pause_reason).where(Issue.id == issue_a)).one()
    assert kept is None


def test_a_newsletters_confirmations_and_test_copies_go_through_its_relay(
    ctx: Context, pair: list[SMTPTestServer]
) -> None:
    x, y = pair
    rctx = relay_ctx(ctx, f"{x.url}?name=xray,{y.url}?name=yankee")
    with api(rctx) as (client, editor):
        newsletter(client, editor, "alpha", relay="yankee")
        newsletter(client, editor, "beta")  # no relay of its own: the pool spreads it
        for i in range(6):
            joined = client.post(
                "/subscribe", json={"email": f"a{i}@alpha.example", "newsletters": ["alpha"]}
            )
            assert joined.status_code in (200, 202), joined.text
            client.post("/subscribe", json={"email": f"b{i}@beta.example", "newsletters": ["beta"]})
        issue = new_issue(client, editor, subject="Alpha test", newsletter="alpha")
        tested = client.post(
            f"/issues/{issue['id']}/test", json={"to": ["editor@alpha.example"]}, headers=editor
        )
        assert tested.status_code == 202, tested.text
    deliver(rctx)
    # Alpha's sender may be verified with yankee's provider only: none of its mail went by x.
    assert arrived(x, "alpha.example") == Counter()
    assert sorted(arrived(y, "alpha.example")) == sorted(
        [f"a{i}@alpha.example" for i in range(6)] + ["editor@alpha.example"]
    )
    beta = arrived(x, "beta.example") + arrived(y, "beta.example")
    assert beta == Counter(f"b{i}@beta.example" for i in range(6))
    assert arrived(x, "beta.example"), "beta's confirmations spread over the pool"
