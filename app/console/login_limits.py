"""Sign-in rate limits per account and per IP, on the shared database counters of app.ratelimit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.ratelimit import Decision, Limit, hit

# Every attempt counts, successful or not, and is counted before the password is checked:
# once locked, a guesser learns nothing more, whatever they try.
LOGIN_PER_ACCOUNT = Limit("login-account", 10, 900)
# Higher: an office behind one NAT may share an address.
LOGIN_PER_IP = Limit("login-ip", 30, 900)


def check_login(
    sessions: sessionmaker[Session], ip: str | None, email: str, now: datetime
) -> Decision:
    """Count one sign-in attempt per account and per IP in its own transaction; return the verdict.

    Its own transaction, committed at once, so a refused attempt still counts.
    """
    decisions: list[Decision] = []
    with session_scope(sessions) as session:
        decisions.append(hit(session, LOGIN_PER_ACCOUNT, email.strip().lower()[:320], now))
        if ip:
            decisions.append(hit(session, LOGIN_PER_IP, ip, now))
    denied = [d for d in decisions if not d.allowed]
    if denied:
        return Decision(False, max(d.retry_after for d in denied))
    return Decision(True)
