"""The webhook sender loop: claim due events, POST them, record the answer, back off.

Runs next to the delivery worker (in `serve` and in `morningpost worker`). Delivery is at least
once: an event is leased before its POST and given back if the process dies, so a receiver may
see one twice and should deduplicate on its `id`. A dead endpoint only ever delays its own
events: sends and sign-ups never wait for it (they just insert rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import metrics
from app.config import Settings
from app.context import Context
from app.db import is_postgres, session_scope
from app.models import Heartbeat, Webhook, WebhookDelivery, WebhookDeliveryStatus, utcnow
from app.webhooks.client import PostResult, post_event

log = logging.getLogger("morningpost.webhooks")

BATCH = 20
BACKOFF_CAP_SECONDS = 3600.0
HEARTBEAT_SECONDS = 5.0
IDLE_SECONDS = 1.0
LOG_KEEP_DAYS = 30
T = TypeVar("T")
W = WebhookDeliveryStatus


@dataclass(frozen=True)
class Due:
    """One claimed event for one webhook: everything the POST needs."""

    id: int
    webhook_id: int
    url: str
    secret: str
    event: str
    body: str
    attempts: int
    created_at: datetime


def backoff(settings: Settings, attempts: int) -> float:
    """Return the wait before the next attempt after `attempts` failures (doubling, max 1 h)."""
    base = settings.webhook_backoff_seconds
    return float(min(base * 2 ** max(0, attempts - 1), BACKOFF_CAP_SECONDS))


def claim_due(
    session: Session, now: datetime, lease_seconds: float, limit: int = BATCH
) -> list[Due]:
    """Lease up to `limit` due events of enabled webhooks (and free leases that lapsed)."""
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.status == W.sending, WebhookDelivery.lease_expires_at < now)
        .values(status=W.pending, lease_expires_at=None)
    )
    pick = (
        select(WebhookDelivery.id)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.status == W.pending,
            WebhookDelivery.next_attempt_at <= now,
            Webhook.disabled_at.is_(None),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if is_postgres(session.get_bind()):  # type: ignore[arg-type]
        # Two processes (serve and a worker) never POST the same event at once.
        pick = pick.with_for_update(of=WebhookDelivery, skip_locked=True)
    ids = list(session.scalars(pick))
    if not ids:
        return []
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids), WebhookDelivery.status == W.pending)
        .values(status=W.sending, lease_expires_at=now + timedelta(seconds=lease_seconds))
    )
    rows = session.execute(
        select(WebhookDelivery, Webhook.url, Webhook.secret)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id.in_(ids))
        .order_by(WebhookDelivery.id)
    ).all()
    return [
        Due(d.id, d.webhook_id, url, secret, d.event, d.body, d.attempts, d.created_at)
        for d, url, secret in rows
    ]


def record(
    session: Session, settings: Settings, results: list[tuple[Due, PostResult]], now: datetime
) -> None:
    """Write each POST's outcome; schedule retries, give up after a day, disable failing hooks."""
    for due, res in results:
        row = session.get(WebhookDelivery, due.id)
        hook = session.get(Webhook, due.webhook_id)
        if row is None or hook is None:
            continue  # the webhook was deleted meanwhile
        row.attempts += 1
        row.last_status_code = res.status
        row.lease_expires_at = None
        if res.ok:
            row.status = W.delivered
            row.delivered_at = now
            row.last_error = None
            hook.consecutive_failures = 0
            continue
        row.last_error = (res.error or f"answered {res.status}")[:500]
        hook.consecutive_failures += 1
        if now - row.created_at >= timedelta(seconds=settings.webhook_give_up_seconds):
            row.status = W.failed
            _disable(hook, now, f"an event got no 2xx answer for a day; last: {row.last_error}")
        else:
            row.status = W.pending
            row.next_attempt_at = now + timedelta(seconds=backoff(settings, row.attempts))
        if hook.consecutive_failures >= settings.webhook_disable_after:
            _disable(
                hook,
                now,
                f"{hook.consecutive_failures} deliveries in a row failed; last: {row.last_error}",
            )
    session.flush()


def _disable(hook: Webhook, now: datetime, reason: str) -> None:
    if hook.disabled_at is None:
        hook.disabled_at = now
        hook.disabled_reason = reason[:500]
        log.warning("webhook %d disabled: %s", hook.id, reason, extra={"webhook_id": hook.id})


def beat(session: Session, owner: str, now: datetime) -> None:
    """Record that this worker process is alive (and forget processes gone for a day)."""
    session.execute(delete(Heartbeat).where(Heartbeat.beat_at < now - timedelta(days=1)))
    # The delivery log keeps a month of finished events; waiting ones are never dropped.
    session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.status.in_([W.delivered, W.failed]),
            WebhookDelivery.created_at < now - timedelta(days=LOG_KEEP_DAYS),
        )
    )
    row = session.get(Heartbeat, owner)
    if row is None:
        session.add(Heartbeat(owner=owner, beat_at=now, info={"pid": os.getpid()}))
    else:
        row.beat_at = now
    session.flush()


def new_owner() -> str:
    """Return a heartbeat owner id unique to this process."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"


def _as_result(answer: PostResult | BaseException) -> PostResult:
    if isinstance(answer, PostResult):
        return answer
    if not isinstance(answer, Exception):
        raise answer  # cancellation and the like are not a POST's outcome
    log.error("webhook POST failed unexpectedly", exc_info=answer)
    return PostResult(None, f"{type(answer).__name__}: {answer}"[:500])


class WebhookSender:
    """POST due events until told to stop; one per worker process."""

    def __init__(self, ctx: Context, owner: str | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.owner = owner or new_owner()

    async def _db(self, fn: Callable[[Session], T]) -> T:
        def work() -> T:
            with session_scope(self.ctx.sessions) as session:
                return fn(session)

        return await asyncio.to_thread(work)

    async def send_due(self) -> int:
        """POST one batch of due events concurrently and record them; return how many."""
        s = self.settings
        lease = s.webhook_timeout_seconds * 2 + 30
        batch = await self._db(lambda ses: claim_due(ses, utcnow(), lease))
        if not batch:
            return 0
        answers = await asyncio.gather(
            *(
                post_event(
                    d.url,
                    d.body.encode(),
                    d.secret,
                    d.event,
                    timeout=s.webhook_timeout_seconds,
                    allow_private=s.webhook_allow_private,
                )
                for d in batch
            ),
            return_exceptions=True,
        )
        # One POST that raised (a bug, not an answer) is a failure of that event alone: the
        # batch's other answers are still recorded, or their events would be sent again.
        results = [(due, _as_result(answer)) for due, answer in zip(batch, answers, strict=True)]
        for due, res in results:
            metrics.webhook_post("delivered" if res.ok else "refused" if res.refused else "failed")
            extra = {"webhook_id": due.webhook_id, "webhook_delivery_id": due.id}
            if not res.ok:
                log.info(
                    "webhook %d: %s not delivered: %s",
                    due.webhook_id,
                    due.event,
                    res.error or res.status,
                    extra=extra,
                )
        await self._db(lambda ses: record(ses, s, results, utcnow()))
        return len(batch)

    async def run(self, stop: asyncio.Event) -> None:
        """Beat and send until `stop` is set; a database hiccup never ends the loop."""
        next_beat = 0.0
        loop = asyncio.get_running_loop()
        db_down = False
        while not stop.is_set():
            busy = 0
            idle = IDLE_SECONDS
            try:
                if loop.time() >= next_beat:
                    next_beat = loop.time() + HEARTBEAT_SECONDS
                    await self._db(lambda ses: beat(ses, self.owner, utcnow()))
                busy = await self.send_due()
                db_down = False
            except DBAPIError as exc:
                # The delivery worker reports an unreachable database (once, then backs off);
                # here one line when it starts is enough, and a slower poll while it lasts.
                if not db_down:
                    reason = (str(exc.orig or exc).strip().splitlines() or [""])[0][:200]
                    log.warning("webhooks wait for the database: %s", reason)
                db_down, idle = True, max(IDLE_SECONDS, 10.0)
            except Exception:
                log.exception("webhook sender iteration failed; retrying shortly")
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle)


async def run_webhook_sender(ctx: Context, stop: asyncio.Event) -> None:
    """Run the webhook sender (and the process heartbeat) until `stop` is set."""
    await WebhookSender(ctx).run(stop)
