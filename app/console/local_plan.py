"""What a send at each reader's own time would do: who gets it now, who later, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from app.issues.service import local_moments
from app.sends.store.ledger import send_recipients_by_zone


@dataclass(frozen=True)
class LocalPlan:
    """The counts and moments a local-time confirmation page states."""

    wall: time
    day: date
    now_count: int  # readers whose moment has passed: they get it at once
    later_count: int
    first: datetime | None  # the first moment still ahead (UTC)
    last: datetime | None  # the last moment (UTC)
    zones: list[tuple[str, int, datetime]]  # (zone, readers, moment), earliest first

    @property
    def total(self) -> int:
        """Return how many readers the send would freeze."""
        return self.now_count + self.later_count


def local_plan(
    session: Session,
    wall: time,
    day: date,
    default_zone: str,
    now: datetime,
    audience: ColumnElement[bool] | None = None,
) -> LocalPlan:
    """Return who gets a local-time send at once and who later, from the same rules as the send.

    `audience` is the send's (service.planned_audience): the plan counts whom the send freezes.
    """
    moments = local_moments(session, wall, day, default_zone)
    counts = send_recipients_by_zone(session, now, audience)
    zones = sorted(
        ((zone, n, moments.get(zone, now)) for zone, n in counts.items()),
        key=lambda z: (z[2], z[0]),
    )
    now_count = sum(n for _, n, at in zones if at <= now)
    ahead = [at for _, _, at in zones if at > now]
    return LocalPlan(
        wall=wall,
        day=day,
        now_count=now_count,
        later_count=sum(n for _, n, at in zones if at > now),
        first=min(ahead) if ahead else None,
        last=max(ahead) if ahead else None,
        zones=zones,
    )
