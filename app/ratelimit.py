"""Sign-up rate limits, counted in the database so every web process shares one count.

A sliding window approximated from two fixed windows (the previous one weighted by how much
of it still overlaps the sliding window): one upserted row per key and window, so several
processes against one PostgreSQL agree, and a restart forgets nothing. Keys are hashed: the
table never holds an IP or an address.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from app.addresses import canonical_address
from app.db import session_scope
from app.errors import DomainError
from app.models import RateLimitHit
from app.tokens import hash_secret


@dataclass(frozen=True)
class Limit:
    """At most `count` requests per `window_seconds` for one subject (an IP, an address)."""

    name: str
    count: int
    window_seconds: int


@dataclass(frozen=True)
class Decision:
    """Whether a request may go ahead, and if not, after how many seconds to retry."""

    allowed: bool
    retry_after: int = 0


# A household or office behind one NAT signs up a few people; a bot signs up thousands.
SIGNUP_PER_IP = Limit("signup-ip", 20, 3600)
# On top of the one-confirmation-per-hour rule: stops an address being used to probe.
SIGNUP_PER_ADDRESS = Limit("signup-address", 5, 3600)


class RateLimited(DomainError):
    """Too many requests; `retry_after` seconds until the next one is allowed."""

    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many sign-ups from here; please try again in {retry_after} s.")
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        """Tell well-behaved clients when to come back."""
        return {"Retry-After": str(self.retry_after)}


def _upsert(session: Session, key: str, window: int) -> int:
    """Add one to the counter of (key, window) atomically and return the new count."""
    insert: Any = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = RateLimitHit.__table__
    stmt = (
        insert(table)
        .values(key=key, window=window, count=1)
        .on_conflict_do_update(
            index_elements=[table.c.key, table.c.window], set_={"count": table.c.count + 1}
        )
        .returning(table.c.count)
    )
    return int(session.execute(stmt).scalar_one())


def _count(session: Session, limit: Limit, subject: str, now: datetime) -> tuple[int, int, float]:
    """Count one request; return (this window's count, the previous one's, seconds into this)."""
    key = hash_secret(f"{limit.name}:{subject}")
    w = limit.window_seconds
    ts = now.timestamp()
    window = int(ts // w) * w
    current = _upsert(session, key, window)
    previous = (
        session.scalar(
            select(RateLimitHit.count).where(
                RateLimitHit.key == key, RateLimitHit.window == window - w
            )
        )
        or 0
    )
    return current, previous, ts - window


def tally(session: Session, limit: Limit, subject: str, now: datetime) -> float:
    """Count one request of `subject` and return how many fell in the sliding window."""
    current, previous, elapsed = _count(session, limit, subject, now)
    return previous * (1 - elapsed / limit.window_seconds) + current


def hit(session: Session, limit: Limit, subject: str, now: datetime) -> Decision:
    """Count one request of `subject` against `limit` and say whether it is allowed."""
    current, previous, elapsed = _count(session, limit, subject, now)
    w = limit.window_seconds
    weight = 1 - elapsed / w
    if previous * weight + current <= limit.count:
        return Decision(True)
    if current <= limit.count and previous:
        # Wait until enough of the previous window has slid out.
        wait = w * (1 - (limit.count - current) / previous) - elapsed
    else:
        # This window alone is over: wait for it to end and partly slide out.
        wait = (w - elapsed) + w * (1 - limit.count / current)
    return Decision(False, max(1, math.ceil(wait)))


# Providers that deliver a.b.c@ to abc@: one mailbox, one count.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox_key(email: str) -> str:
    """Return the mailbox an address reaches, for counting only (never stored or mailed).

    `victim+1@…`, `victim+2@…` all reach `victim@…`: counted apart, thirty of them would
    each get a confirmation email, which is how a mailbox is bombed through a sign-up form.
    """
    # The canonical form every stored address has (NFKC, IDNA, full stops): `ｍailhost.net`,
    # `ⓜailhost.net` and `mailhost。net` are one mailbox and so one count.
    address = canonical_address(email)
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    local = local.split("+", 1)[0]
    domain = domain.rstrip(".")
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
        domain = DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"


def network_key(ip: str) -> str:
    """Return what the per-IP limit counts: the address, or its /64 for IPv6.

    One IPv6 subscriber line gets a whole /64 and can rotate through its 2**64 addresses;
    counted apart, each would start a fresh limit.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def check_signup(
    sessions: sessionmaker[Session], ip: str | None, email: str | None, now: datetime
) -> Decision:
    """Count one sign-up per IP and per address in its own transaction; return the verdict.

    Its own transaction, committed at once: a request that then fails (a 422, a 429) still
    counts, and the counters never wait on the request's transaction.
    """
    decisions: list[Decision] = []
    with session_scope(sessions) as session:
        if ip:
            decisions.append(hit(session, SIGNUP_PER_IP, network_key(ip), now))
        if email:
            decisions.append(hit(session, SIGNUP_PER_ADDRESS, mailbox_key(email), now))
    denied = [d for d in decisions if not d.allowed]
    if denied:
        return Decision(False, max(d.retry_after for d in denied))
    return Decision(True)


def prune(session: Session, now: datetime, older_than: timedelta = timedelta(days=2)) -> int:
    """Delete counters of windows that ended long ago; return how many went."""
    cutoff = int((now - older_than).timestamp())
    result = session.execute(delete(RateLimitHit).where(RateLimitHit.window < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
