"""Editors' relay table: thin handler over app.sends.store.relays."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from app.deps import ContextDep, SessionDep, require_editor
from app.sends.store.relays import relay_report

relays_router = APIRouter(prefix="/relays", tags=["relays"], dependencies=[Depends(require_editor)])


class RelayOut(BaseModel):
    """One relay: its state, today's count against its quota, its limits and last error."""

    name: str
    host: str
    state: str
    sent_today: int
    daily_quota: int | None
    rate: float | None
    weight: float
    rested_until: datetime | None
    last_error: str | None
    last_error_at: datetime | None


class RelaysOut(BaseModel):
    """Every configured relay (empty with the capture mailer)."""

    items: list[RelayOut]


@relays_router.get("", response_model=RelaysOut)
def list_relays(session: SessionDep, ctx: ContextDep) -> RelaysOut:
    """Return each relay's name, state, sent today, daily quota, rate and last error."""
    lines = relay_report(session.connection(), ctx.settings.relays)
    return RelaysOut(
        items=[
            RelayOut(
                name=r.name,
                host=r.where,
                state=r.state,
                sent_today=r.sent_today,
                daily_quota=r.daily or None,
                rate=r.rate or None,
                weight=r.weight,
                rested_until=r.rested_until,
                last_error=r.last_error,
                last_error_at=r.last_error_at,
            )
            for r in lines
        ]
    )
