"""Record clicks on rewritten links and count them per link (flush only; the caller commits).

Scanner rule: security gateways and Apple Mail Privacy Protection fetch links right after a
message lands. Without the reader in the token we cannot know when *their* copy landed, so a
click counts as a scanner's when it comes less than SCANNER_SECONDS after the issue's send
started, or less than SCANNER_SECONDS after any of the issue's messages was sent. Scanner clicks
are kept (`scanner_clicks`) but left out of the headline `count`. For a long send this is
conservative: clicks while messages are still going out are set aside.
When readers are tracked (MORNINGPOST_TRACK_READERS=true) the window is exact: 60 s after
that reader's own copy was sent.

Repeats: a link followed again and again is one click, not one row each. A link naming its
reader counts once per reader (once as a scanner's, once as theirs). An anonymous one counts
once per client (an IPv6 client by its /64) and link in an hour or two, and one client is
counted for at most CLICKS_PER_CLIENT links an hour; past that the redirect still works and
nothing is written but a counter.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.models import Click, Delivery, Issue, Subscriber
from app.ratelimit import Limit, hit, network_key
from app.rendering.links import ClickTokens

SCANNER_SECONDS = 60
# A repeat within the window of the first is the same click (the database counter is hashed:
# no IP is kept).
CLICK_ONCE = Limit("click-once", 1, 3600)
CLICKS_PER_CLIENT = Limit("click-client", 60, 3600)


def is_scanner(
    session: Session,
    issue_id: int,
    started_at: datetime | None,
    now: datetime,
    subscriber_id: int | None = None,
) -> bool:
    """Tell whether a click at `now` falls in the scanner window of its issue (or reader)."""
    window = timedelta(seconds=SCANNER_SECONDS)
    if subscriber_id is not None:
        sent_at = session.scalar(
            select(Delivery.sent_at).where(
                Delivery.issue_id == issue_id, Delivery.subscriber_id == subscriber_id
            )
        )
        if sent_at is not None:
            return now < sent_at + window  # the reader's own copy: exact
    if started_at is None or now < started_at + window:
        return True  # before the send (a preview) or in its first minute
    recent = exists().where(
        Delivery.issue_id == issue_id, Delivery.sent_at > now - window, Delivery.sent_at <= now
    )
    return bool(session.scalar(select(recent)))


def follow(
    session: Session,
    settings: Settings,
    token: str,
    now: datetime,
    record: bool,
    reader: int | None = None,
    client: str | None = None,
) -> str:
    """Return the URL a click token points at (BadToken if tampered); record the click.

    `reader` (a subscriber id from the link's reader part) is kept only while
    MORNINGPOST_TRACK_READERS is on; id 0 (test copies, previews) is nobody. `client` is the
    client's address (app.web.proxies.client_ip): an anonymous repeat from it is not counted.
    """
    slug, index, url = ClickTokens(settings.secret_keys).read(token)
    if not record:
        return url
    issue = session.execute(select(Issue.id, Issue.started_at).where(Issue.slug == slug)).first()
    if issue is None:
        return url  # a draft's preview link, or an issue since deleted: nothing to count
    subscriber_id = reader if settings.track_readers and reader else None
    if subscriber_id is not None and session.get(Subscriber, subscriber_id) is None:
        subscriber_id = None  # erased since: the click stays, the person does not
    scanner = is_scanner(session, issue.id, issue.started_at, now, subscriber_id)
    if _repeat(session, issue.id, index, subscriber_id, scanner, client, now):
        return url
    session.add(
        Click(
            issue_id=issue.id,
            link_index=index,
            url=url,
            subscriber_id=subscriber_id,
            scanner=scanner,
            clicked_at=now,
        )
    )
    session.flush()
    return url


def _repeat(
    session: Session,
    issue_id: int,
    index: int,
    subscriber_id: int | None,
    scanner: bool,
    client: str | None,
    now: datetime,
) -> bool:
    """Tell whether this click was counted already (or its client is past its share)."""
    if subscriber_id is not None:
        return bool(
            session.scalar(
                select(
                    exists().where(
                        Click.issue_id == issue_id,
                        Click.link_index == index,
                        Click.subscriber_id == subscriber_id,
                        Click.scanner.is_(scanner),
                    )
                )
            )
        )
    if client is None:
        return False
    where = network_key(client)
    if not hit(session, CLICK_ONCE, f"{issue_id} {index} {scanner} {where}", now).allowed:
        return True
    return not hit(session, CLICKS_PER_CLIENT, where, now).allowed


def click_counts(session: Session, issue_id: int) -> list[dict[str, Any]]:
    """Return [{"url", "count", "scanner_clicks", "readers"}] of one issue, most clicked first.

    `readers` (distinct readers outside the scanner window) is 0 unless readers are tracked.
    """
    anonymous = Click.subscriber_id.is_(None)
    readers = func.count(func.distinct(case((Click.scanner.is_(False), Click.subscriber_id))))
    # A reader counts once per link even if two of their clicks raced past the repeat check.
    human = func.sum(case((Click.scanner.is_(False) & anonymous, 1), else_=0)) + readers
    scanners = func.sum(case((Click.scanner.is_(True) & anonymous, 1), else_=0)) + func.count(
        func.distinct(case((Click.scanner.is_(True), Click.subscriber_id)))
    )
    rows = session.execute(
        select(Click.url, human, scanners, readers, func.min(Click.link_index))
        .where(Click.issue_id == issue_id)
        .group_by(Click.url)
        .order_by(human.desc(), func.min(Click.link_index))
    ).all()
    return [
        {"url": url, "count": int(n or 0), "scanner_clicks": int(s or 0), "readers": int(r or 0)}
        for url, n, s, r, _ in rows
    ]
