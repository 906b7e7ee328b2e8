"""Sign-in rate limits, on the shared database counters of app.ratelimit.

Three counts, keyed on what cannot be dodged: the account in its canonical form (so
`ed@ｎewsroom.org` is `ed@newsroom.org`) and the client as the trusted proxies report it,
an IPv6 client by its /64.

- per (account, client): a guesser at one account from one place is refused (429);
- per client: one place guessing across accounts is refused;
- per account, from everywhere: never refused, only slowed. Refusing it would let anyone
  anywhere lock an editor out by guessing wrong on purpose; a growing delay costs a
  distributed guesser a lot and the real editor a few seconds at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from app.addresses import canonical_address
from app.db import session_scope
from app.ratelimit import Limit, hit, network_key, tally

# Every attempt counts, successful or not, and is counted before the password is checked:
# once refused, a guesser learns nothing more from that place, whatever they try.
LOGIN_PER_ACCOUNT_CLIENT = Limit("login-account-client", 10, 900)
# Higher: an office behind one NAT may share an address.
LOGIN_PER_CLIENT = Limit("login-client", 30, 900)
# Attempts on one account from everywhere before it is slowed down, then the delay: it starts
# at SLOW_FIRST seconds, doubles every SLOW_DOUBLING attempts, and stops growing at SLOW_MAX.
LOGIN_PER_ACCOUNT = Limit("login-account", 30, 900)
SLOW_FIRST = 0.5
SLOW_DOUBLING = 10
SLOW_MAX = 8.0


@dataclass(frozen=True)
class LoginVerdict:
    """Whether an attempt may be checked, after how long to retry if not, and how long to wait."""

    allowed: bool
    retry_after: int = 0
    delay: float = 0.0


def account_delay(attempts: float) -> float:
    """Return the seconds to hold an attempt when the account saw `attempts` of late."""
    over = attempts - LOGIN_PER_ACCOUNT.count
    if over <= 0:
        return 0.0
    return min(SLOW_MAX, SLOW_FIRST * 2 ** ((over - 1) / SLOW_DOUBLING))


def check_login(
    sessions: sessionmaker[Session], client_ip: str | None, email: str, now: datetime
) -> LoginVerdict:
    """Count one sign-in attempt in its own transaction; return the verdict.

    Its own transaction, committed at once, so a refused attempt still counts. `client_ip`
    is app.web.proxies.client_ip (trusted proxies already believed).
    """
    account = canonical_address(email)
    client = network_key(client_ip) if client_ip else "unknown"
    with session_scope(sessions) as session:
        decisions = [hit(session, LOGIN_PER_ACCOUNT_CLIENT, f"{account} {client}", now)]
        if client_ip:
            decisions.append(hit(session, LOGIN_PER_CLIENT, client, now))
        denied = [d for d in decisions if not d.allowed]
        if denied:
            # Refused here: no password is checked, so the account itself is not slowed.
            return LoginVerdict(False, max(d.retry_after for d in denied))
        return LoginVerdict(
            True, delay=account_delay(tally(session, LOGIN_PER_ACCOUNT, account, now))
        )
