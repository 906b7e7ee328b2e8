"""The automations' loop beside the worker: sequence steps that fell due, A/B decisions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy.exc import DBAPIError

from app.automations import ab_pauses, abtests
from app.automations.sequences.scheduler import tick as sequences_tick
from app.context import Context
from app.db import session_scope
from app.errors import Conflict
from app.models import utcnow

log = logging.getLogger("morningpost.automations")

IDLE_SECONDS = 1.0


def ab_tick(ctx: Context, at: datetime | None = None) -> list[int]:
    """Mirror pauses and cancels onto A/B carriers, then decide the tests that are due."""
    now = at or utcnow()
    with session_scope(ctx.sessions) as session:
        ab_pauses.mirror_status(session, now)
        due = abtests.due_tests(session, now)
    decided = []
    for issue_id in due:
        with session_scope(ctx.sessions) as session:
            try:
                abtests.decide(session, issue_id, now, None, ctx.settings.default_timezone)
            except Conflict:
                continue  # another worker or an editor decided it first
        decided.append(issue_id)
    return decided


def tick(ctx: Context, at: datetime | None = None) -> None:
    """Run one round of every automation."""
    sequences_tick(ctx, at)
    ab_tick(ctx, at)


async def run_automations(ctx: Context, stop: asyncio.Event) -> None:
    """Run the automations until `stop`; trouble in one round never stops the loop."""
    db_down = False
    while not stop.is_set():
        try:
            await asyncio.to_thread(tick, ctx)
            db_down = False
        except DBAPIError as exc:
            if not db_down:
                reason = (str(exc.orig or exc).strip().splitlines() or [""])[0][:200]
                log.warning("automations wait for the database: %s", reason)
            db_down = True
        except Exception:  # a bug in one round must not stop the loop: log it, go on
            log.exception("the automations loop failed; trying again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), IDLE_SECONDS * (4 if db_down else 1))
