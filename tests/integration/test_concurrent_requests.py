"""No anonymous request can freeze the server: identical public POSTs fired at once all answer.

Handlers that did blocking database work on the event loop deadlocked against their own
session's commit (issue 9, item 1): two sign-ups for one address hung every request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx2
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import Subscriber, SubscriberStatus
from tests.helpers import add_subscribers

PARALLEL = 4
# Generous: a healthy server answers in milliseconds; a frozen one never does.
TIMEOUT = 20.0


def _all_at_once(url: str, send: Callable[[httpx2.Client], httpx2.Response]) -> list[int]:
    """Fire PARALLEL identical requests plus a health check together; return their statuses."""
    with (
        httpx2.Client(base_url=url, timeout=TIMEOUT) as client,
        ThreadPoolExecutor(PARALLEL + 1) as pool,
    ):
        futures = [pool.submit(send, client) for _ in range(PARALLEL)]
        health = pool.submit(lambda c: c.get("/healthz"), client)
        statuses = [f.result().status_code for f in futures]
        assert health.result().status_code == 200
    return statuses


def _token_pages(ctx: Context) -> tuple[int, int]:
    active, pending = add_subscribers(ctx, 1)[0], add_subscribers(ctx, 1, "pending", "p.org")[0]
    return active, pending


def test_identical_sign_ups_at_once_all_answer(live: tuple[str, Context]) -> None:
    url, ctx = live
    statuses = _all_at_once(
        url, lambda c: c.post("/subscribe", json={"email": "same@example.org", "name": "Ada"})
    )
    assert statuses == [202] * PARALLEL
    form = _all_at_once(
        url, lambda c: c.post("/subscribe", data={"email": "form@example.org", "name": "Bo"})
    )
    assert form == [200] * PARALLEL
    with session_scope(ctx.sessions) as session:
        emails = session.scalars(select(Subscriber.email).order_by(Subscriber.email)).all()
    assert emails == ["form@example.org", "same@example.org"]


def _undo_token(html: str) -> str:
    found = re.search(r'name="undo" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_every_public_post_survives_identical_requests_at_once(
    live: tuple[str, Context],
) -> None:
    url, ctx = live
    active, pending = _token_pages(ctx)
    tokens = ctx.tokens
    with session_scope(ctx.sessions) as session:
        pending_email = session.get_one(Subscriber, pending).email
        nonce = session.get_one(Subscriber, active).token_nonce
    confirm = tokens.confirm_token(pending, pending_email)
    unsub = tokens.unsubscribe_token(active, nonce)
    prefs = tokens.preferences_token(active, nonce)

    assert _all_at_once(url, lambda c: c.post(f"/confirm/{confirm}")) == [200] * PARALLEL
    assert (
        _all_at_once(
            url, lambda c: c.post(f"/preferences/{prefs}", data={"name": "New", "pause_weeks": "0"})
        )
        == [200] * PARALLEL
    )
    assert (
        _all_at_once(
            url,
            lambda c: c.post(f"/unsubscribe/{unsub}", data={"List-Unsubscribe": "One-Click"}),
        )
        == [200] * PARALLEL
    )

    # "Subscribe me again" fired four times at once: one wins, the rest get a page saying the
    # button no longer applies; none hangs and none is a server error.
    with httpx2.Client(base_url=url, timeout=TIMEOUT) as client:
        client.post(f"/unsubscribe/{unsub}/undo")  # (no token: refused, changes nothing)
        client.post(f"/preferences/{prefs}", data={"name": "Again", "pause_weeks": "0"})
    with session_scope(ctx.sessions) as session:
        row = session.get_one(Subscriber, active)
        row.status = SubscriberStatus.active
    with httpx2.Client(base_url=url, timeout=TIMEOUT) as client:
        undo = _undo_token(client.post(f"/unsubscribe/{unsub}").text)
    statuses = _all_at_once(
        url, lambda c: c.post(f"/unsubscribe/{unsub}/undo", data={"undo": undo})
    )
    assert 200 in statuses and set(statuses) <= {200, 400}, statuses

    # "Leave" from the preferences page racing itself, then against "changed my mind".
    assert set(
        _all_at_once(url, lambda c: c.post(f"/preferences/{prefs}", data={"action": "leave"}))
    ) <= {200}

    def mixed(c: httpx2.Client) -> httpx2.Response:
        c.post(f"/unsubscribe/{unsub}/undo", data={"undo": undo})
        return c.post(f"/preferences/{prefs}", data={"action": "leave"})

    assert set(_all_at_once(url, mixed)) <= {200}
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Subscriber, active).status in (
            SubscriberStatus.unsubscribed,
            SubscriberStatus.pending,
        )
        assert session.get_one(Subscriber, pending).status == SubscriberStatus.active


def test_sign_up_is_committed_before_the_answer(live: tuple[str, Context]) -> None:
    url, ctx = live
    with httpx2.Client(base_url=url, timeout=TIMEOUT) as client:
        response = client.post("/subscribe", json={"email": "early@example.org"})
        assert response.status_code == 202
        # Read at once, from another connection: the row must already be there.
        with session_scope(ctx.sessions) as session:
            found = session.scalar(
                select(Subscriber).where(Subscriber.email == "early@example.org")
            )
        assert found is not None
