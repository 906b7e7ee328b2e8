"""The one place a delivery Worker is built: the send core wired to the domains above it.

The send core (app/sends/) imports none of them (tests/unit/test_layering.py): it returns facts and
is handed these hooks. The API process, `morningpost worker`, `morningpost dispatch --wait`
and the tests all build their worker here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from app import metrics
from app.context import Context
from app.housekeeping import tidy
from app.issues.service import send_gate
from app.models import utcnow
from app.sends.hooks import SendHooks
from app.sends.smtp.mailer import Mailer, make_mailer
from app.sends.smtp.relays import RelayObserver
from app.sends.store.rows import Bounced
from app.sends.worker import Worker
from app.suppressions.service import bounce_detail, lift_send_bounces, suppress_bounced
from app.webhooks import events


def suppress_hard_bounces(session: Session, bounced: Sequence[Bounced], now: datetime) -> None:
    """Suppress readers a relay refused with 5.1.x, and emit subscriber.bounced for them."""
    for fact in bounced:
        # The detail names the send, so a relay found at fault can have them lifted again.
        suppress_bounced(session, fact.subscriber_ids, now, detail=bounce_detail(fact.issue_id))
        events.subscribers_event(
            session, events.SUBSCRIBER_BOUNCED, fact.subscriber_ids, "hard_bounce"
        )


def lift_relay_bounces(session: Session, issue_id: int, now: datetime) -> int:
    """Lift the suppressions one send's 5.1.x replies wrote (the relay was at fault); count them."""
    return lift_send_bounces(session, bounce_detail(issue_id), now)


def announce_finished(session: Session, issue_ids: Sequence[int]) -> None:
    """Queue issue.sent for each send just finished."""
    events.issues_sent(session, issue_ids)


# Per-relay results and state, as Prometheus metrics (the send core imports no metrics).
RELAY_METRICS = RelayObserver(
    result=metrics.relay_result,
    state=lambda relay, up: metrics.relay_state(relay, up=up),
)


def send_hooks(ctx: Context) -> SendHooks:
    """Return the hooks that connect a worker to the pre-send check, suppressions and more."""
    settings = ctx.settings
    return SendHooks(
        gate=send_gate(ctx.renderer),  # the pre-send check runs again when a scheduled issue starts
        bounced=suppress_hard_bounces,
        bounces_undone=lift_relay_bounces,
        finished=announce_finished,
        tidy=lambda session, now: tidy(session, settings, now),
        observe_smtp=metrics.smtp_observed,
        observe_claim=metrics.claim_observed,
        observe_commit=metrics.handover_committed,
        observe_wait=metrics.handover_waited,
    )


def build_worker(
    ctx: Context,
    mailer: Mailer | None = None,
    *,
    owner: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Worker:
    """Return a worker wired to the domains above the send core (default mailer: settings')."""
    return Worker(
        ctx,
        mailer or make_mailer(ctx.settings, ctx.engine, RELAY_METRICS),
        owner=owner,
        hooks=send_hooks(ctx),
        clock=clock,
    )
