"""RSS/Atom to email: register feeds, poll them, turn new entries into one issue each poll.

A poll is taken by moving the feed's next_poll_at forward with a compare-and-set, so two
workers never poll one feed at once. The first poll only records what exists (no back
catalogue is mailed). Later polls make one issue of the entries not seen before, by guid or
id (or link): a draft for an editor, or sent at once. A feed that is down, malformed, too
large or redirects inward keeps its alert (last_error) and is tried again at its next time,
later after repeated failures. Entries that cannot become an issue (a link too long, text
a block refuses) are still recorded as seen, so one odd entry never blocks the feed for good;
the feed's alert says what was left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from app.audience.newsletters import by_slug, get_newsletter, readers_of
from app.automations.durations import next_run, parse_schedule
from app.automations.feed_fetch import FeedResponse, fetch_feed
from app.automations.feed_issue import issue_fields
from app.automations.feed_parse import LINK_MAX, Entry, FeedMalformed, ParsedFeed, parse_feed
from app.context import Context
from app.db import session_scope
from app.errors import DomainError, InvalidInput, NotFound, validation_message
from app.issues.schemas import IssueIn, SendIn
from app.issues.service import create_issue, send_issue
from app.models import Feed, FeedItem, Subscriber, SubscriberStatus, utcnow
from app.webhooks.fetch import FetchError
from app.webhooks.safety import parse_target

log = logging.getLogger("morningpost.feeds")

MIN_PERIOD = timedelta(minutes=1)
LEASE = timedelta(minutes=5)  # a poller that died mid-poll gives the feed back after this
BACKOFF_CAP = timedelta(hours=6)
MODES = ("draft", "send")
IDLE_SECONDS = 5.0
# The earliest zone is 14 hours ahead of UTC (Pacific/Kiritimati): a daily send feed polls
# when HH:MM comes there, so every reader's HH:MM of that day is still ahead.
EARLIEST_ZONE = timedelta(hours=14)


def create_feed(
    session: Session,
    url: str,
    every: str,
    mode: str,
    max_items: int,
    newsletter: str | None = None,
) -> Feed:
    """Register a feed of a newsletter (by slug; None: the default one); first poll due now.

    The first poll only records what exists.
    """
    target = parse_target(url)  # http(s), no credentials; addresses are checked at each fetch
    newsletter_id = by_slug(session, newsletter).id
    if mode not in MODES:
        raise InvalidInput('mode is "draft" or "send".')
    if not 1 <= max_items <= 50:
        raise InvalidInput("max_items is from 1 to 50.")
    feed = Feed(
        url=url.strip(),
        every=parse_schedule(every, MIN_PERIOD),
        mode=mode,
        max_items=max_items,
        title=target.host,
        next_poll_at=utcnow(),
        newsletter_id=newsletter_id,
    )
    session.add(feed)
    session.flush()
    return feed


def get_feed(session: Session, feed_id: int) -> Feed:
    """Return one feed or raise NotFound."""
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise NotFound("No such feed.")
    return feed


def list_feeds(session: Session) -> list[Feed]:
    """Return every feed, oldest first."""
    return list(session.scalars(select(Feed).order_by(Feed.id)))


def items_seen(session: Session, feed_id: int) -> int:
    """Return how many entries of a feed have been seen."""
    return len(list(session.scalars(select(FeedItem.id).where(FeedItem.feed_id == feed_id))))


def delete_feed(session: Session, feed_id: int) -> None:
    """Stop polling a feed and forget its entries (issues made from it stay)."""
    session.delete(get_feed(session, feed_id))
    session.flush()


def _take(session: Session, feed_id: int, now: datetime, force: bool) -> Feed | None:
    """Lease a due feed (or any, with force) by moving next_poll_at; None if another has it."""
    feed = session.get(Feed, feed_id)
    if feed is None or (not force and feed.next_poll_at > now):
        return None
    taken = session.execute(
        update(Feed)
        .where(Feed.id == feed_id, Feed.next_poll_at == feed.next_poll_at)
        .values(next_poll_at=now + LEASE)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.refresh(feed)
    return feed


def next_poll(feed: Feed, now: datetime) -> datetime:
    """Return a feed's next poll: its schedule, and for a daily send feed 14 hours early."""
    if feed.mode == "send" and feed.every.startswith("daily "):
        return next_run(feed.every, now + EARLIEST_ZONE) - EARLIEST_ZONE
    return next_run(feed.every, now)


def local_send_moments(
    session: Session, newsletter_id: int, wall: time, now: datetime, default_zone: str
) -> dict[str, datetime]:
    """Return, per zone the newsletter's readers live in, the first `wall` there not yet past.

    Today where HH:MM is still ahead, tomorrow where it has passed: nobody gets a daily
    feed's issue at another hour than the one asked for.
    """
    zones = session.scalars(
        select(Subscriber.timezone)
        .where(Subscriber.status == SubscriberStatus.active, readers_of(newsletter_id))
        .distinct()
    ).all()
    moments: dict[str, datetime] = {}
    for zone in zones:
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            tz = ZoneInfo(default_zone)  # a name stored before validation: the list's default
        local = now.astimezone(tz)
        moment = datetime.combine(local.date(), wall, tzinfo=tz)
        if moment < local:
            moment = datetime.combine(local.date() + timedelta(days=1), wall, tzinfo=tz)
        moments[zone] = moment.astimezone(UTC)
    return moments


def _send(ctx: Context, session: Session, feed: Feed, issue_id: int, now: datetime) -> None:
    """Send a feed's issue: at once, or at the daily HH:MM in each reader's own zone."""
    if not feed.every.startswith("daily "):
        send_issue(session, issue_id, None, now, ctx.renderer)
        return
    wall = time.fromisoformat(feed.every[6:])
    moments = local_send_moments(
        session, feed.newsletter_id, wall, now, ctx.settings.default_timezone
    )
    day = min(moments.values(), default=now).date()
    data = SendIn(local_time=wall, date=day)
    send_issue(session, issue_id, data, now, ctx.renderer, moments=moments)


def _record_failure(feed: Feed, error: str, now: datetime) -> None:
    feed.failures += 1
    feed.last_status = None  # the alert says what happened instead
    feed.last_error = error[:500]
    feed.last_poll_at = now
    # Back off on repeated failures, never past the schedule's own next time by much.
    backoff = min(MIN_PERIOD * 2 ** min(feed.failures, 12), BACKOFF_CAP)
    feed.next_poll_at = max(next_poll(feed, now), now + backoff)
    log.warning("feed %s (%s): %s", feed.id, feed.url, feed.last_error)


def _dropped_links(feed: Feed, entries: list[Entry], issue_id: int) -> str | None:
    """Return (and log) the feed's note on links left out of an issue as too long, or None."""
    dropped = [e.title for e in entries if e.dropped_link]
    if not dropped:
        return None
    note = (
        f"Issue {issue_id} shows these entries without their links (longer than {LINK_MAX} "
        "characters): " + "; ".join(dropped)
    )[:500]
    log.warning("feed %s (%s): %s", feed.id, feed.url, note)
    return note


def _new_entries(session: Session, feed: Feed, parsed: ParsedFeed) -> list[FeedItem]:
    """Record the entries not seen before; return them, newest first, at most max_items."""
    seen = set(session.scalars(select(FeedItem.key).where(FeedItem.feed_id == feed.id)))
    fresh: list[FeedItem] = []
    for entry in parsed.entries:
        if entry.key in seen:
            continue
        seen.add(entry.key)
        link = entry.link or entry.dropped_link  # the record keeps the link a reader did not see
        item = FeedItem(feed_id=feed.id, key=entry.key, title=entry.title, link=link)
        session.add(item)
        fresh.append(item)
    session.flush()
    return fresh


def _apply(ctx: Context, feed_id: int, got: FeedResponse, parsed: ParsedFeed | None) -> int | None:
    """Record one successful poll in one transaction; return the id of an issue made."""
    now = utcnow()
    with session_scope(ctx.sessions) as session:
        feed = get_feed(session, feed_id)
        feed.last_poll_at, feed.last_status = now, got.status
        feed.failures, feed.last_error = 0, None
        feed.next_poll_at = next_poll(feed, now)
        if got.status == 304 or parsed is None:
            return None
        feed.etag = (got.etag or "")[:300] or None
        feed.last_modified = (got.last_modified or "")[:100] or None
        feed.title = parsed.title or feed.title
        fresh = _new_entries(session, feed, parsed)
        if not feed.primed:
            feed.primed = True  # the back catalogue is recorded, never mailed
            return None
        if not fresh:
            return None
        entries = [e for e in parsed.entries if e.key in {f.key for f in fresh}]
        entries = entries[: feed.max_items]
        slug = get_newsletter(session, feed.newsletter_id).slug
        try:
            with session.begin_nested():
                fields = {**issue_fields(feed.title, entries), "newsletter": slug}
                issue = create_issue(session, IssueIn.model_validate(fields), ctx.renderer)
        except (ValidationError, DomainError) as exc:
            # The entries stay recorded as seen: tried again, they would fail the same way at
            # every poll and hold back every later entry with them.
            if isinstance(exc, ValidationError):
                reason = validation_message(exc.errors())
            else:
                reason = exc.message
            note = f"{len(fresh)} new entries were recorded as seen but made no issue: {reason}"
            _record_failure(feed, note, now)
            return None
        for item in fresh:
            item.issue_id = issue.id
        feed.last_issue_id = issue.id
        feed.last_error = _dropped_links(feed, entries, issue.id)
        if feed.mode == "send":
            try:
                with session.begin_nested():
                    _send(ctx, session, feed, issue.id, now)
            except DomainError as exc:
                # The entries are not lost: the issue waits as a draft, and the feed says why.
                feed.last_error = f"Issue {issue.id} was kept as a draft: {exc.message}"[:500]
        log.info("feed %s: %d new entries became issue %s", feed.id, len(fresh), issue.id)
        return issue.id


def _lease(ctx: Context, feed_id: int, force: bool) -> tuple[str, str | None, str | None] | None:
    with session_scope(ctx.sessions) as session:
        feed = _take(session, feed_id, utcnow(), force)
        return None if feed is None else (feed.url, feed.etag, feed.last_modified)


async def poll_feed(ctx: Context, feed_id: int, *, force: bool = False) -> int | None:
    """Poll one feed if it is due (or now, with force); return the id of an issue made."""
    leased = await asyncio.to_thread(_lease, ctx, feed_id, force)
    if leased is None:
        return None
    url, etag, modified = leased
    allow = ctx.settings.feeds_allow_private
    try:
        got = await fetch_feed(url, etag, modified, allow_private=allow)
        parsed = await asyncio.to_thread(parse_feed, got.body) if got.status == 200 else None
        return await asyncio.to_thread(_apply, ctx, feed_id, got, parsed)
    except (FetchError, FeedMalformed, DomainError, IntegrityError, ValidationError) as exc:
        message = str(getattr(exc, "message", exc))
        await asyncio.to_thread(_fail, ctx, feed_id, message)
        return None


def _fail(ctx: Context, feed_id: int, message: str) -> None:
    with session_scope(ctx.sessions) as session:
        feed = session.get(Feed, feed_id)
        if feed is not None:
            _record_failure(feed, message, utcnow())


def due_feeds(ctx: Context) -> list[int]:
    """Return the ids of the feeds due now."""
    with session_scope(ctx.sessions) as session:
        return list(session.scalars(select(Feed.id).where(Feed.next_poll_at <= utcnow())))


async def run_feed_poller(ctx: Context, stop: asyncio.Event) -> None:
    """Poll due feeds until `stop`; one feed's trouble never stops the others."""
    db_down = False
    while not stop.is_set():
        try:
            ids = await asyncio.to_thread(due_feeds, ctx)
            for feed_id in ids:
                if stop.is_set():
                    break
                await poll_feed(ctx, feed_id)
            db_down = False
        except DBAPIError as exc:
            # The delivery worker reports an unreachable database; one line here is enough.
            if not db_down:
                reason = (str(exc.orig or exc).strip().splitlines() or [""])[0][:200]
                log.warning("feeds wait for the database: %s", reason)
            db_down = True
        except Exception:  # a bug in one poll must not stop the others: log it, go on
            log.exception("the feed poller failed; trying again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), IDLE_SECONDS * (4 if db_down else 1))
