"""The send core hands its facts to hooks, inside the transaction that made them (issue 18, item 3).

The core never imports suppressions or webhooks: it records a hard bounce, reports it as a
`Bounced` fact and the worker passes it to the hook it was handed, in the same transaction;
likewise a finished send. A bare worker (no hooks) acts on neither.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.context import Context
from app.db import session_scope
from app.models import Delivery, Issue, Subscriber, Suppression
from app.sends.hooks import SendHooks
from app.sends.smtp.mailer import make_mailer
from app.sends.store.rows import Bounced
from app.sends.worker import Worker
from tests.delivery_support import add_issue, add_subscribers, send_now
from tests.smtp_server import SMTPTestServer


def _status_of(session: Session, subscriber_id: int) -> str | None:
    return session.scalar(select(Delivery.status).where(Delivery.subscriber_id == subscriber_id))


def test_bounces_and_finished_sends_reach_the_hooks_inside_their_transaction(
    ctx: Context, smtp_server: SMTPTestServer
) -> None:
    ok_id, gone_id = add_subscribers(ctx, ["ok@example.org", "gone@example.org"])
    smtp_server.handler.plan("gone@example.org", "550 5.1.1 No such user")
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    seen: dict[str, Any] = {}

    def bounced(session: Session, facts: Sequence[Bounced], now: datetime) -> None:
        seen["bounced"] = list(facts)
        # Read through the hook's own session: the failure is already written, uncommitted.
        seen["in_transaction"] = session.in_transaction()
        seen["row_then"] = _status_of(session, gone_id)

    def finished(session: Session, issue_ids: Sequence[int]) -> None:
        seen["finished"] = list(issue_ids)
        seen["issue_then"] = session.scalar(select(Issue.status).where(Issue.id == issue_id))

    hooks = SendHooks(bounced=bounced, finished=finished)
    asyncio.run(Worker(ctx, make_mailer(ctx.settings), hooks=hooks).run_until_idle())

    assert seen["bounced"] == [Bounced(issue_id, (gone_id,))]
    assert seen["in_transaction"] is True
    assert seen["row_then"] == "failed"
    assert seen["finished"] == [issue_id]
    assert seen["issue_then"] == "sent"
    with session_scope(ctx.sessions) as s:
        assert _status_of(s, ok_id) == "sent"
        # These hooks suppress nobody: the core itself never writes a suppression.
        assert s.scalar(select(func.count()).select_from(Suppression)) == 0
        assert s.scalar(select(Subscriber.status).where(Subscriber.id == gone_id)) == "active"


def test_a_bare_worker_records_the_bounce_and_acts_on_nothing_above_the_core(
    ctx: Context, smtp_server: SMTPTestServer
) -> None:
    (gone_id,) = add_subscribers(ctx, ["gone@example.org"])
    smtp_server.handler.plan("gone@example.org", "550 5.1.1 No such user")
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)

    asyncio.run(Worker(ctx, make_mailer(ctx.settings)).run_until_idle())

    with session_scope(ctx.sessions) as s:
        assert _status_of(s, gone_id) == "failed"
        assert s.scalar(select(Issue.status).where(Issue.id == issue_id)) == "sent"
        assert s.scalar(select(func.count()).select_from(Suppression)) == 0
