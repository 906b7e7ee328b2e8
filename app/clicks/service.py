"""Record clicks on rewritten links and count them per link (flush only; the caller commits).

Scanner rule: security gateways and Apple Mail Privacy Protection fetch links right after a
message lands. Without the reader in the token we cannot know when *their* copy landed, so a
click counts as a scanner's when it comes less than SCANNER_SECONDS after the issue's send
started, or less than SCANNER_SECONDS after any of the issue's messages was sent. Scanner clicks
are kept (`scanner_clicks`) but left out of the headline `count`. For a long send this is
conservative: clicks while messages are still going out are set aside.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.models import Click, Delivery, Issue
from app.rendering.links import ClickTokens

SCANNER_SECONDS = 60


def is_scanner(session: Session, issue_id: int, started_at: datetime | None, now: datetime) -> bool:
    """Tell whether a click at `now` falls in the scanner window of its issue."""
    window = timedelta(seconds=SCANNER_SECONDS)
    if started_at is None or now < started_at + window:
        return True  # before the send (a preview) or in its first minute
    recent = exists().where(
        Delivery.issue_id == issue_id, Delivery.sent_at > now - window, Delivery.sent_at <= now
    )
    return bool(session.scalar(select(recent)))


def follow(session: Session, settings: Settings, token: str, now: datetime, record: bool) -> str:
    """Return the URL a click token points at (BadToken if tampered); record the click."""
    slug, index, url = ClickTokens(settings.secret_keys).read(token)
    if not record:
        return url
    issue = session.execute(select(Issue.id, Issue.started_at).where(Issue.slug == slug)).first()
    if issue is None:
        return url  # a draft's preview link, or an issue since deleted: nothing to count
    session.add(
        Click(
            issue_id=issue.id,
            link_index=index,
            url=url,
            scanner=is_scanner(session, issue.id, issue.started_at, now),
            clicked_at=now,
        )
    )
    session.flush()
    return url


def click_counts(session: Session, issue_id: int) -> list[dict[str, Any]]:
    """Return [{"url", "count", "scanner_clicks"}] of one issue, most clicked first."""
    human = func.sum(case((Click.scanner.is_(False), 1), else_=0))
    scanners = func.sum(case((Click.scanner.is_(True), 1), else_=0))
    rows = session.execute(
        select(Click.url, human, scanners, func.min(Click.link_index))
        .where(Click.issue_id == issue_id)
        .group_by(Click.url)
        .order_by(human.desc(), func.min(Click.link_index))
    ).all()
    return [
        {"url": url, "count": int(n or 0), "scanner_clicks": int(s or 0)} for url, n, s, _ in rows
    ]
