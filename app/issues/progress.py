"""A send as it goes: counts, rate and ETA, bounces and clicks, who got it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.bounces.service import bounce_stats, policy_alerts
from app.clicks.service import click_counts
from app.issues.drafts import get_issue
from app.issues.schemas import SendStats
from app.models import (
    utcnow,
)
from app.sends.store.ledger import issue_stats
from app.sends.store.log import DeliveryPage, delivery_page
from app.sends.store.progress import send_rate
from app.sends.store.sends import (
    waves,
)
from app.subscribers.service import parse_cursor


def stats(session: Session, issue_id: int, now: datetime | None = None) -> SendStats:
    """Return the delivery counts of an issue, its status, send rate and ETA."""
    issue = get_issue(session, issue_id)
    now = now or utcnow()
    counts = issue_stats(session, issue_id)
    rate = send_rate(session, issue_id, now, issue.started_at)
    waiting = counts["pending"] + counts["sending"] + counts["retry"]
    # A local-time send goes out in waves: readers not yet due wait for their own morning.
    later, next_due, last_due = waves(session, issue_id, now)
    due_now = waiting - later
    eta: float | None = due_now / rate if rate > 0 else (0 if not due_now else None)
    if last_due is not None and eta is not None:
        eta = max(eta, (last_due - now).total_seconds())
    return SendStats.model_validate(
        {
            **counts,
            "status": issue.status,
            "pause_reason": issue.pause_reason,
            "rate_per_second": round(rate, 1),
            "eta_seconds": round(eta) if eta is not None else None,
            "not_yet_due": later,
            "next_due_at": next_due,
            "local_time": issue.local_time,
            "local_date": issue.local_date,
            # Asynchronous bounces and complaints that came back for this issue's deliveries;
            # policy alerts mean receivers refused our mail (X.7.x): the sender must act.
            "bounces": bounce_stats(session, issue_id),
            "alerts": ([issue.alert] if issue.alert else []) + policy_alerts(session, issue_id),
            "clicks": click_counts(session, issue_id),  # per link, scanners left out
        }
    )


def issue_progress(session: Session, issue_id: int) -> tuple[str, SendStats]:
    """Return an issue's status and its stats (counts, rate, ETA)."""
    data = stats(session, issue_id)
    return data.status, data


def issue_deliveries(
    session: Session,
    issue_id: int,
    *,
    status: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> DeliveryPage:
    """Return a page of one issue's per-recipient log."""
    get_issue(session, issue_id)
    return delivery_page(
        session, issue_id=issue_id, status=status, q=q, after=parse_cursor(cursor), limit=limit
    )
