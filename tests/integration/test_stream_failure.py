"""A stream whose claim fails mid-send finishes the messages already on the wire.

Each sender of a stream may have a message on the wire while the producer claims more rows.
When a claim fails (the database refused, a deadlock), the stream must not cancel the senders
mid-message: their rows were handed over, the relay may accept them, and a row whose result is
never written lapses into `unknown` when its lease ends. The senders finish what they hold,
the results are written, and only then does the failure reach the worker.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from app.context import Context
from app.sends.smtp.mailer import make_mailer
from app.sends.store import ledger
from app.sends.worker import Worker
from tests.delivery_support import add_issue, add_subscribers, deliveries, send_now
from tests.smtp_server import SMTPTestServer

READERS = 40


class ClaimRefused(RuntimeError):
    """What the failing claim raises (any error the database might give)."""


def test_a_failed_claim_lets_the_messages_on_the_wire_finish(
    ctx: Context, smtp_server: SMTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.settings = ctx.settings.model_copy(update={"batch_size": 8, "smtp_connections": 2})
    emails = [f"s{i:02d}@example.org" for i in range(READERS)]
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    assert send_now(ctx, issue_id) == READERS
    smtp_server.handler.delay_seconds = 0.05  # messages stay on the wire a while

    claim = ledger.claim_batch
    calls = 0

    def failing_claim(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls >= 3:  # the third claim fails while the first rows are being sent
            raise ClaimRefused("could not claim: the database refused")
        return claim(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger, "claim_batch", failing_claim)
    worker = Worker(ctx, make_mailer(ctx.settings))

    async def one_stream() -> None:
        try:
            await worker.run_once()
        finally:
            await worker.mailer.aclose()
            worker.commits.close()

    with pytest.raises(ClaimRefused):
        asyncio.run(one_stream())

    rows = deliveries(ctx, issue_id)
    copies = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    # Nothing the stream held is left leased: each row it sent is recorded as sent, the rest
    # are back in the queue; none is left to lapse into `unknown`.
    assert {a: r.status for a, r in rows.items() if r.status not in ("sent", "pending")} == {}
    assert copies, "the first claims were sent"
    assert all(rows[a].status == "sent" for a in copies)
    assert all(n == 1 for n in copies.values())
