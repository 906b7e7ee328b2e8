"""Every statement on relays: daily counts, shared rate slots, rests, and sends they paused.

The daily quota is kept by reserving blocks (`reserve_daily`), so a worker writes once per
block, not once per message; what it does not use it gives back (`give_back_daily`). The rate
across workers is a GCRA kept in `relay_state.next_slot`: a worker reserves a run of slots
with one statement and spaces its messages over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from app.models import Issue, IssueStatus, Newsletter, RelayState, RelayUsage, utcnow
from app.relay_config import RelaySpec

# Sends paused because no relay could take a message start with this, so the relay pool can
# resume them by itself (and never a send an editor paused).
PAUSE_PREFIX = "paused: no relay can send now"


def pinned_prefix(relay: str) -> str:
    """Return how a send paused because its newsletter's own relay cannot send begins."""
    # Never starts with PAUSE_PREFIX: another relay coming back must not resume it.
    return f"paused: relay {relay} cannot send now"


def _insert_ignore(conn: Connection, model: Any, values: dict[str, Any]) -> None:
    """Insert a row unless its key exists (two workers may create it at once)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(model).values(**values).on_conflict_do_nothing())


def _usage(conn: Connection, relay: str, day: date) -> int:
    _insert_ignore(conn, RelayUsage, {"relay": relay, "day": day, "count": 0})
    query = select(RelayUsage.count).where(RelayUsage.relay == relay, RelayUsage.day == day)
    return int(conn.execute(query.with_for_update()).scalar_one())


def reserve_daily(conn: Connection, relay: str, day: date, want: int, daily: int) -> int:
    """Reserve up to `want` messages of today's quota; return how many were granted."""
    used = _usage(conn, relay, day)
    granted = max(0, min(want, daily - used))
    if granted:
        conn.execute(
            update(RelayUsage)
            .where(RelayUsage.relay == relay, RelayUsage.day == day)
            .values(count=RelayUsage.count + granted)
        )
    return granted


def count_usage(conn: Connection, relay: str, day: date, n: int) -> None:
    """Add `n` messages to a relay's day (relays without a quota count after the fact)."""
    if n > 0:
        _usage(conn, relay, day)
        conn.execute(
            update(RelayUsage)
            .where(RelayUsage.relay == relay, RelayUsage.day == day)
            .values(count=RelayUsage.count + n)
        )


def give_back_daily(conn: Connection, relay: str, day: date, n: int) -> None:
    """Return `n` reserved and unused messages to a day's quota."""
    if n > 0:
        conn.execute(
            update(RelayUsage)
            .where(RelayUsage.relay == relay, RelayUsage.day == day, RelayUsage.count >= n)
            .values(count=RelayUsage.count - n)
        )


def _state(conn: Connection, relay: str) -> None:
    _insert_ignore(conn, RelayState, {"relay": relay, "failures": 0, "next_slot": 0.0})


def reserve_slots(conn: Connection, relay: str, k: int, rate: float, now: float) -> float:
    """Reserve `k` send slots 1/rate apart across all workers; return the first (epoch s)."""
    _state(conn, relay)
    query = select(RelayState.next_slot).where(RelayState.relay == relay).with_for_update()
    start = max(float(conn.execute(query).scalar_one()), now)
    conn.execute(
        update(RelayState).where(RelayState.relay == relay).values(next_slot=start + k / rate)
    )
    return start


def note_state(
    conn: Connection,
    relay: str,
    *,
    rested_until: datetime | None,
    failures: int,
    error: str | None = None,
    at: datetime | None = None,
) -> None:
    """Record a relay's rest (or its recovery), and its last error when there is a new one."""
    _state(conn, relay)
    values: dict[str, Any] = {"rested_until": rested_until, "failures": failures}
    if error is not None:
        values |= {"last_error": error[:500], "last_error_at": at}
    conn.execute(update(RelayState).where(RelayState.relay == relay).values(**values))


@dataclass(frozen=True)
class RelayLine:
    """One relay as GET /relays, the console and `morningpost status` show it."""

    name: str
    where: str
    state: str  # ready, resting, over quota
    sent_today: int
    daily: int  # 0 = no quota
    rate: float  # 0 = no limit
    weight: float
    rested_until: datetime | None
    last_error: str | None
    last_error_at: datetime | None

    @property
    def used_share(self) -> float:
        """Return the share of the daily quota used (0 without a quota)."""
        return min(1.0, self.sent_today / self.daily) if self.daily else 0.0


def relay_lines(
    conn: Connection, specs: list[RelaySpec], day: date, now: datetime
) -> list[RelayLine]:
    """Return each configured relay's state, today's count and last error."""
    names = [s.name for s in specs]
    rows = conn.execute(
        select(RelayUsage.relay, RelayUsage.count).where(
            RelayUsage.relay.in_(names), RelayUsage.day == day
        )
    )
    counts = {relay: count for relay, count in rows}
    states = {
        row.relay: row
        for row in conn.execute(select(RelayState).where(RelayState.relay.in_(names)))
    }
    lines = []
    for spec in specs:
        st = states.get(spec.name)
        sent = int(counts.get(spec.name, 0))
        rested = st.rested_until if st is not None else None
        rested = rested if rested is not None and rested > now else None
        if spec.daily and sent >= spec.daily:
            state = "over quota"
        elif rested is not None:
            state = "resting"
        else:
            state = "ready"
        lines.append(
            RelayLine(
                spec.name,
                spec.where,
                state,
                sent,
                spec.daily,
                spec.rate,
                spec.weight,
                rested,
                st.last_error if st is not None else None,
                st.last_error_at if st is not None else None,
            )
        )
    return lines


def pause_sending(conn: Connection, reason: str) -> list[int]:
    """Pause every send in progress with `reason`; return their ids."""
    rows = conn.execute(
        update(Issue)
        .where(Issue.status == IssueStatus.sending)
        .values(status=IssueStatus.paused, pause_reason=reason[:500])
        .returning(Issue.id)
    )
    return [int(i) for (i,) in rows]


def resume_relay_paused(conn: Connection) -> list[int]:
    """Resume the sends the relay pool paused (never one an editor paused); return their ids."""
    rows = conn.execute(
        update(Issue)
        .where(Issue.status == IssueStatus.paused, Issue.pause_reason.startswith(PAUSE_PREFIX))
        .values(status=IssueStatus.sending, pause_reason=None, alert=None)
        .returning(Issue.id)
    )
    return [int(i) for (i,) in rows]


def relay_report(conn: Connection, specs: list[RelaySpec]) -> list[RelayLine]:
    """Return the relay table as of now (today is the UTC day)."""
    now = utcnow()
    return relay_lines(conn, specs, now.date(), now)


def _pinned_to(relay: str) -> Any:
    """Return the condition on Issue of belonging to a newsletter that chose this relay."""
    return Issue.newsletter_id.in_(select(Newsletter.id).where(Newsletter.relay == relay))


def pause_pinned(conn: Connection, relay: str, reason: str) -> list[int]:
    """Pause the sends in progress of newsletters kept to `relay`; return their ids."""
    rows = conn.execute(
        update(Issue)
        .where(Issue.status == IssueStatus.sending, _pinned_to(relay))
        .values(status=IssueStatus.paused, pause_reason=reason[:500])
        .returning(Issue.id)
    )
    return [int(i) for (i,) in rows]


def resume_pinned(conn: Connection, relays: list[str]) -> list[int]:
    """Resume the sends paused because their own relay could not send, for these relays."""
    resumed: list[int] = []
    for relay in relays:
        rows = conn.execute(
            update(Issue)
            .where(
                Issue.status == IssueStatus.paused,
                # autoescape: a relay name may hold "_", a LIKE wildcard.
                Issue.pause_reason.startswith(pinned_prefix(relay) + ":", autoescape=True),
            )
            .values(status=IssueStatus.sending, pause_reason=None, alert=None)
            .returning(Issue.id)
        )
        resumed += [int(i) for (i,) in rows]
    return resumed
