"""The delivery worker: housekeeping, the outbox, then a stream of deliveries (stream.py).

Crash semantics (the in-flight window): a claimed batch is committed as `sending` under this
worker's lease before any SMTP traffic, and leases are renewed while the worker lives. A row's
content goes on the wire only after its hand-over mark is committed, together with the results
gathered so far (stream.py). If the process dies, rows never handed over go back to the queue
when their lease ends; only handed-over rows without a result (at most the window) become
`unknown`, since they may have reached the relay: none is resent blindly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from app.context import Context
from app.db import is_postgres as is_postgres_engine
from app.db import session_scope
from app.errors import DomainError
from app.housekeeping import tidy
from app.models import Issue, IssueStatus, OutboxKind, Subscriber, utcnow
from app.rendering.masthead import resolve
from app.sends.compose import PreparedMessage, delivery_bytes, envelope_sender, outbox_message_id
from app.sends.dkim import DkimSigner, feedback_id
from app.sends.smtp.mailer import Mailer, MailerConnection, Outcome
from app.sends.store import lease, ledger, outbox, sends
from app.sends.store.frozen import frozen_content, newsletter_fields
from app.sends.store.hot import SQLiteHotPath
from app.sends.store.ledger import Claim, Result, RetryPolicy
from app.sends.store.outbox import OutboxClaim
from app.sends.store.rows import D
from app.sends.store.sends import SendGate
from app.sends.stream import DeliveryStream, RenderFailed, transmit
from app.sends.throttle import AdaptiveRate, DomainSchedule, ErrorWatch, RateLimiter
from app.sends.watch import BounceBurst, RelayWatch
from app.tokens import NOBODY_NONCE
from app.webhooks.events import issues_sent

log = logging.getLogger("morningpost.delivery")

CACHE_SIZE = 8  # prepared issues kept per process
TIDY_EVERY_SECONDS = 3600.0  # purging unconfirmed sign-ups is not urgent
# How often a worker looks for dead workers' leases on its own host (one indexed query).
REAP_EVERY_SECONDS = 5.0
T = TypeVar("T")

__all__ = ["RateLimiter", "RenderFailed", "Worker", "new_owner"]


class DatabaseUnavailable(Exception):
    """The database stayed unreachable past WORKER_GIVE_UP_SECONDS; the worker stops."""


def _short(exc: DBAPIError) -> str:
    """Return the first line of a driver error, without SQLAlchemy's background link."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return (text.strip().splitlines() or ["unknown error"])[0][:200]


def new_owner() -> str:
    """Return a lease owner id unique to this process and worker: host:pid:random."""
    host = socket.gethostname()[:30].replace(":", "_")
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_alive(owner: str) -> bool:
    """Tell whether the process behind a lease owner on this host still runs."""
    try:
        pid = int(owner.split(":")[1])
    except (IndexError, ValueError):
        return True  # not ours to judge: its lease will run out
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True


class Worker:
    """Deliver what the ledger says, in streams of batches, until told to stop."""

    def __init__(
        self,
        ctx: Context,
        mailer: Mailer,
        *,
        owner: str | None = None,
        gate: SendGate | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ctx = ctx
        # Run at the moment a scheduled issue starts (the pre-send check), passed in by the
        # caller so the send core never depends on the issues layer above it.
        self.gate = gate
        # What time it is for "who is due" (scheduled issues, local-time waves); tests set it.
        self.clock = clock
        self.settings = s = ctx.settings
        self.mailer = mailer
        self.owner = owner or new_owner()
        self.policy = RetryPolicy(s.retry_backoff_seconds, s.max_attempts)
        self.limiter = RateLimiter(s.rate_per_second)
        self.adaptive = AdaptiveRate(self.limiter)
        self.domains = DomainSchedule(s.domain_rates, s.domain_rate_default)
        self.errors = ErrorWatch(s.pause_error_rate, s.pause_window)
        # Relay failures in a row before a send pauses itself: every connection twice.
        self.relay = RelayWatch(max(4, 2 * s.smtp_connections))
        self.bursts = BounceBurst()
        self.domain = s.sender.domain
        self.sender = s.sender.addr_spec
        # DKIM is signed over each recipient's exact bytes; None when no key is configured.
        self.signer = DkimSigner.from_settings(s)
        self._prepared: OrderedDict[tuple[int, int, bool], PreparedMessage] = OrderedDict()
        self._messages: dict[int, PreparedMessage | Exception] = {}
        self._date = ("", 0.0)
        self._stop = asyncio.Event()
        self._next_tidy = 0.0  # monotonic time of the next housekeeping pass
        self._next_reap = 0.0  # and of the next look for dead neighbours' leases
        self._commit_conn: Connection | None = None  # used by one commit at a time
        # SQLite's commits run on the loop, on the driver (store/hot.py); PostgreSQL's on a
        # thread, since each one waits for the server.
        self._hot: SQLiteHotPath | None = None
        if not is_postgres_engine(ctx.engine):
            self._hot = SQLiteHotPath(ctx.engine, self.owner, self.policy)

    # Loops ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; then finish the messages in hand, release the rest, return."""
        self._stop = stop
        log.info("worker %s started", self.owner)
        down_since: float | None = None  # monotonic time the database stopped answering
        try:
            while not stop.is_set():
                wait = self.settings.poll_interval_seconds
                try:
                    busy = await self.run_once()
                    if down_since is not None:
                        log.warning("the database answers again; delivering")
                    down_since = None
                except DBAPIError as exc:
                    # Unreachable or refusing: one line, not a traceback a poll; back off, and
                    # give up after a while so a supervisor sees the process fail.
                    busy = False
                    first = down_since is None
                    down_since = time.monotonic() if down_since is None else down_since
                    down = time.monotonic() - down_since
                    if down >= self.settings.worker_give_up_seconds:
                        raise DatabaseUnavailable(
                            f"the database did not answer for {down:.0f} s: {_short(exc)}"
                        ) from None
                    wait = min(30.0, max(wait, 1.0) * 2 ** min(int(down // 5), 5))
                    if first or (wait == 30.0 and int(down) % 60 < wait):
                        log.warning(
                            "the database does not answer (%s); retrying every %.0f s",
                            _short(exc),
                            wait,
                        )
                except Exception:
                    # Anything else must not kill a long-running worker; the ledger is intact.
                    log.exception("delivery iteration failed; retrying shortly")
                    busy = False
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
        finally:
            await self.mailer.aclose()
            self._close_commit_connection()
            log.info("worker %s stopped", self.owner)

    async def run_until_idle(self) -> None:
        """Process until nothing is claimable right now (no pending, no due retry, no outbox)."""
        try:
            while await self.run_once():
                pass
        finally:
            await self.mailer.aclose()  # idle connections reopen lazily if the worker is reused
            self._close_commit_connection()

    async def run_once(self) -> bool:
        """Run housekeeping, the outbox and one delivery stream; return whether any was claimed."""
        now = self.clock()
        started = await self.db(lambda s: sends.start_due_issues(s, now, self.gate))
        if started:
            log.info("started scheduled issues %s", started)
        await self.expire()
        if time.monotonic() >= self._next_tidy:
            self._next_tidy = time.monotonic() + TIDY_EVERY_SECONDS
            tidied = await self.db(lambda s: tidy(s, self.settings, now))
            if any(tidied.values()):
                log.info("housekeeping: %s", tidied)
        sent_outbox = await self._outbox_batch()
        self._messages.clear()  # re-read issues each stream: an edit or a fix is picked up
        sent = await DeliveryStream(self, self._stop).run()
        finished = await self.db(lambda s: issues_sent(s, sends.finish_issues(s, utcnow())))
        if finished:
            log.info("issues %s finished", finished)
        return bool(sent_outbox or sent)

    # What the delivery stream calls ---------------------------------------------------------

    def claim_limit(self) -> int:
        limit = self.settings.batch_size
        rate = self.settings.rate_per_second
        if rate > 0:
            # A batch waiting in memory should not take longer than its lease to send.
            limit = min(limit, max(1, int(rate * self.settings.lease_seconds / 2)))
        return limit

    async def message_for(self, issue_id: int) -> PreparedMessage | Exception:
        """Return (and remember for this stream) the issue's prepared message, or why it failed."""
        if issue_id not in self._messages:
            try:
                self._messages[issue_id] = await self._prepared_issue(issue_id, test=False)
            except Exception as exc:
                # Nothing was sent, so a retry (with backoff, then failed) is safe and visible.
                log.exception("issue %d could not be rendered", issue_id)
                self._messages[issue_id] = exc
        return self._messages[issue_id]

    def build(self, claim: Claim, date: str) -> bytes:
        """Return one recipient's wire bytes (see compose.delivery_bytes)."""
        prepared = self._messages[claim.issue_id]
        if isinstance(prepared, Exception):
            raise RenderFailed(str(prepared))
        return delivery_bytes(prepared, claim, self.ctx.tokens, date, self.signer)

    def envelope_sender(self, delivery_id: int) -> str:
        """Return MAIL FROM for a delivery (see compose.envelope_sender)."""
        if not self.settings.bounce_domain:
            return self.sender  # parsed once: the From address does not change mid-run
        return envelope_sender(delivery_id, self.settings)

    def date_header(self) -> str:
        """Return the Date header value for messages built now."""
        # The Date header changes once a second; formatting it per message is wasted work.
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self._date[1] >= 1.0:
            self._date = (format_datetime(utcnow(), usegmt=True), loop_now)
        return self._date[0]

    async def commit(
        self, results: list[Result], handed: list[int], undo_bounces: set[int] | frozenset[int]
    ) -> set[int]:
        """Record results and hand the next group over, in one transaction.

        Returns the ids actually handed over: only those may go on the wire.

        For sends in `undo_bounces` (a relay refused everyone alike), the 5.1.x failures and
        their suppressions are undone in the same transaction, after the results are written.
        """
        now = utcnow()
        plain = not undo_bounces and not any(r.suppress for r in results)
        if plain and self._hot is not None:
            # SQLite, every few messages: on the loop, unless another writer holds the lock.
            try:
                marked = self._hot.run(results, handed, now)
            except Exception:
                self._hot.close()
                raise
            if marked is not None:
                return marked
        return await asyncio.to_thread(self._commit, results, handed, undo_bounces, now, plain)

    def _commit(
        self,
        results: list[Result],
        handed: list[int],
        undo_bounces: set[int] | frozenset[int],
        now: datetime,
        plain: bool,
    ) -> set[int]:
        if plain:
            # The common case on PostgreSQL: a connection of its own, kept open, and no ORM
            # session (its set-up and bookkeeping cost more than the two statements).
            conn = self._commit_connection()
            try:
                with conn.begin():
                    ledger.record_rows(conn, D, self.owner, results, now, self.policy)
                    return lease.hand_over(conn, self.owner, handed, now)
            except Exception:
                self._close_commit_connection()  # a broken connection is not reused
                raise
        with session_scope(self.ctx.sessions) as ses:
            ledger.record_results(ses, self.owner, results, now, policy=self.policy)
            marked = lease.hand_over(ses, self.owner, handed, now)
            for issue_id in sorted(undo_bounces):
                requeued, lifted = sends.undo_relay_bounces(ses, issue_id, now)
                if requeued or lifted:
                    log.warning(
                        "issue %d: the relay refused readers alike; %d deliveries queued again, "
                        "%d suppressions lifted",
                        issue_id,
                        requeued,
                        lifted,
                    )
        return marked

    def _commit_connection(self) -> Connection:
        if self._commit_conn is None or self._commit_conn.closed:
            self._commit_conn = self.ctx.engine.connect()
        return self._commit_conn

    def _close_commit_connection(self) -> None:
        if self._hot is not None:
            self._hot.close()
        conn, self._commit_conn = self._commit_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    async def note_alert(self, issue_id: int, text: str) -> None:
        """Show a relay problem on the send (stats `alerts`) while it lasts."""
        try:
            await self.db(lambda s: sends.set_alert(s, issue_id, text, utcnow()))
        except Exception:
            log.exception("could not record the alert of issue %d", issue_id)

    async def renew(self, ids: list[int]) -> None:
        """Extend the leases of rows in hand, and expire those of workers that died."""
        s = self.settings
        renewed = await self.db(
            lambda ses: lease.renew_leases(ses, self.owner, ids, utcnow(), s.lease_seconds)
        )
        await self.expire()
        log.debug("renewed %d leases", renewed)

    async def expire(self) -> None:
        """End leases that ran out, and at once those of dead workers on this host."""
        expired = await self.db(lambda s: lease.expire_leases(s, utcnow()))
        if time.monotonic() >= self._next_reap:
            self._next_reap = time.monotonic() + REAP_EVERY_SECONDS
            host = self.owner.split(":", 1)[0] + ":"
            # Not renewed for three renewal periods: a live worker renews every few seconds.
            stale = timedelta(
                seconds=self.settings.lease_seconds
                - 3 * lease.renew_interval(self.settings.lease_seconds)
            )
            owners = await self.db(lambda s: lease.lease_owners(s, host, utcnow() + stale))
            dead = [o for o in owners if o != self.owner and not owner_alive(o)]
            if dead:
                reaped = await self.db(lambda s: lease.expire_leases(s, utcnow(), dead))
                log.warning(
                    "worker(s) %s on this host are gone: %d of their rows back in the queue, "
                    "%d unknown (they were on the wire)",
                    ", ".join(dead),
                    reaped.requeued,
                    reaped.unknown,
                )
        if expired:
            log.warning(
                "leases ran out: %d rows back in the queue, %d unknown (they were on the wire)",
                expired.requeued,
                expired.unknown,
            )

    async def pause(self, issue_id: int, reason: str) -> bool:
        """Pause a send, saying why; return False when it was no longer sending."""
        try:
            await self.db(
                lambda s: sends.flip_status(
                    s, issue_id, IssueStatus.sending, IssueStatus.paused, reason
                )
            )
        except DomainError:
            return False
        finally:
            self.errors.forget(issue_id)
        return True

    # The outbox (confirmations, test copies): small, one batch at a time ---------------------

    async def _outbox_batch(self) -> int:
        s = self.settings
        claims = await self.db(
            lambda ses: outbox.claim_outbox(
                ses, self.owner, s.batch_size, utcnow(), s.lease_seconds
            )
        )
        if not claims:
            return 0
        date = format_datetime(utcnow(), usegmt=True)
        data: dict[int, bytes | Exception] = {}
        for c in claims:
            try:
                data[c.outbox_id] = await self._outbox_bytes(c, date)
            except Exception as exc:  # a broken template must not block the rest
                log.exception("outbox message %d could not be built", c.outbox_id)
                data[c.outbox_id] = RenderFailed(str(exc))

        def build(claim_id: int) -> bytes:
            value = data[claim_id]
            if isinstance(value, Exception):
                raise value
            return value

        def record(results: list[Result]) -> None:
            with session_scope(self.ctx.sessions) as ses:
                outbox.record_outbox(ses, self.owner, results, utcnow(), policy=self.policy)

        outcomes = await self._send_all(
            [(c.outbox_id, c.attempts, c.to_address) for c in claims], build, record
        )
        unsent = [c.outbox_id for c in claims if c.outbox_id not in outcomes]
        if unsent:
            await self.db(lambda ses: outbox.release_outbox(ses, self.owner, unsent))
        # "sent" only for what the relay accepted (2xx): the rest says what became of it.
        tally = Counter(str(o) for o in outcomes.values())
        log.info(
            "outbox: %s", ", ".join(f"{n} {what}" for what, n in sorted(tally.items())) or "none"
        )
        return len(claims)

    async def _send_all(
        self,
        items: list[tuple[int, int, str]],
        build: Callable[[int], bytes],
        record: Callable[[list[Result]], None],
    ) -> dict[int, Outcome]:
        """Send (row id, attempts, address) items over concurrent connections; record at the end."""
        queue: asyncio.Queue[tuple[int, int, str]] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        outcomes: dict[int, Outcome] = {}
        results: list[Result] = []

        async def one(conn: MailerConnection, row_id: int, attempts: int, to: str) -> None:
            async def make() -> bytes:
                return build(row_id)

            res = await transmit(conn, self.limiter, self.sender, to, make, stuffed=False)
            if res.alert is not None and self.relay.should_log(res.alert, time.monotonic()):
                log.warning("relay problem while sending a confirmation or test: %s", res.alert)
            outcomes[row_id] = res.outcome
            results.append(Result(row_id, attempts, res.outcome, res.reply, res.suppress))

        async def sender_task() -> None:
            async with self.mailer.connection() as conn:
                while not self._stop.is_set():
                    try:
                        item = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    await one(conn, *item)

        n = max(1, min(self.settings.smtp_connections, len(items)))
        try:
            await asyncio.gather(*(sender_task() for _ in range(n)))
        finally:
            # Shielded so a cancelled worker still writes what it knows.
            await asyncio.shield(asyncio.to_thread(record, results))
        return outcomes

    # Helpers -------------------------------------------------------------------------------

    async def db(self, fn: Callable[..., T]) -> T:
        """Run fn(session) in one transaction on a thread (sessions are synchronous)."""

        def work() -> T:
            with session_scope(self.ctx.sessions) as session:
                return fn(session)

        return await asyncio.to_thread(work)

    async def _prepared_issue(self, issue_id: int, *, test: bool) -> PreparedMessage:
        """Return the issue's PreparedMessage, rendering it once per (issue, version).

        A delivery renders the send's frozen content (one send is one version, whatever the
        live issue says now); a test copy renders the issue as it is being edited.
        """
        if test:
            row: Any = await self.db(
                lambda s: s.execute(
                    select(
                        Issue.subject, Issue.preheader, Issue.slug, Issue.blocks, Issue.version
                    ).where(Issue.id == issue_id)
                ).one()
            )
        else:
            row = await self.db(lambda s: frozen_content(s, issue_id, utcnow()))
        key = (issue_id, row.version, test)
        if key in self._prepared:
            self._prepared.move_to_end(key)
            return self._prepared[key]
        # The issue's newsletter: its name, sender, footer and List-Id (once per issue too).
        fields = await self.db(lambda s: newsletter_fields(s, issue_id))
        masthead = resolve(self.settings, **fields) if fields is not None else None

        def render() -> PreparedMessage:
            compiled = self.ctx.renderer.compile_issue(
                subject=row.subject,
                preheader=row.preheader,
                slug=row.slug,
                blocks=row.blocks,
                masthead=masthead,
            )
            if test:
                compiled = replace(compiled, subject=f"[TEST] {compiled.subject}")
            headers = {"Feedback-ID": feedback_id(issue_id, self.settings)}
            return PreparedMessage.build(
                compiled, self.settings, extra_headers=headers, masthead=masthead
            )

        prepared = await asyncio.to_thread(render)  # premailer is slow: keep the loop free
        self._prepared[key] = prepared
        while len(self._prepared) > CACHE_SIZE:
            self._prepared.popitem(last=False)
        return prepared

    async def _outbox_bytes(self, claim: OutboxClaim, date: str) -> bytes:
        tokens = self.ctx.tokens
        # Test copies are not deliveries: their links carry tokens for subscriber 0, which
        # verify but belong to nobody, so clicking them in a test copy changes nothing.
        sub_id = claim.subscriber_id or 0
        nonce = NOBODY_NONCE
        msgid = outbox_message_id(claim.outbox_id, self.domain)
        if claim.kind == OutboxKind.test and claim.issue_id is not None:
            prepared = await self._prepared_issue(claim.issue_id, test=True)
            sub_id = 0
        elif claim.kind == OutboxKind.welcome:  # issue 12: list mail, filled like an issue
            welcome = await asyncio.to_thread(self.ctx.renderer.welcome_email)
            prepared = PreparedMessage.build(welcome, self.settings)
            # Its unsubscribe and preferences links must name this very reader (id + nonce).
            found = await self.db(
                lambda s: s.scalar(select(Subscriber.token_nonce).where(Subscriber.id == sub_id))
            )
            nonce = found or NOBODY_NONCE
        else:
            token = tokens.confirm_token(sub_id, claim.to_address)
            url = f"{self.settings.base_url}/confirm/{token}"

            def render() -> PreparedMessage:
                compiled = self.ctx.renderer.confirmation_email(confirm_url=url)
                return PreparedMessage.build(compiled, self.settings, list_headers=False)

            prepared = await asyncio.to_thread(render)
        data = prepared.fill(
            to=claim.to_address,
            unsubscribe_token=tokens.unsubscribe_token(sub_id, nonce),
            preferences_token=tokens.preferences_token(sub_id, nonce),
            message_id=msgid,
            date=date,
        )
        return self.signer.sign(data) if self.signer else data
