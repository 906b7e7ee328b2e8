"""The outbox (confirmations, welcome mail, test copies): small, sent one batch at a time.

Moved from worker.py as it was (issue 18, item 4): claimed and recorded like deliveries, over
connections of their own, recorded at the end of the batch (store/outbox.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from email.utils import format_datetime
from functools import partial

from sqlalchemy import select

from app.context import Context
from app.db import OnThread, session_scope
from app.models import OutboxKind, Subscriber, SubscriptionStatus, utcnow
from app.rendering.masthead import Masthead, from_settings, resolve
from app.sends.compose import PreparedMessage, outbox_message_id
from app.sends.dkim import DkimSigner
from app.sends.messages import MessageCache, RenderFailed
from app.sends.ports import Observe, unobserved
from app.sends.smtp.mailer import Mailer, MailerConnection, Outcome
from app.sends.store import outbox
from app.sends.store.frozen import reader_newsletter_fields
from app.sends.store.ledger import Result, RetryPolicy
from app.sends.store.outbox import OutboxClaim
from app.sends.throttle import RateLimiter
from app.sends.transmit import transmit
from app.sends.watch import RelayWatch
from app.tokens import NOBODY_NONCE

log = logging.getLogger("morningpost.delivery")

PENDING = (SubscriptionStatus.pending.value,)
ACTIVE = (SubscriptionStatus.active.value,)


class OutboxSender:
    """Send one batch of the outbox over concurrent connections, and record it."""

    def __init__(
        self,
        ctx: Context,
        mailer: Mailer,
        owner: str,
        *,
        db: OnThread,
        policy: RetryPolicy,
        messages: MessageCache,
        limiter: RateLimiter,
        relay: RelayWatch,
        signer: DkimSigner | None,
        observe: Observe = unobserved,
    ) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.mailer = mailer
        self.owner = owner
        self.db = db
        self.policy = policy
        self.messages = messages  # test copies are filled from the issue's prepared message
        self.limiter = limiter
        self.relay = relay
        self.signer = signer
        self.observe = observe  # each SMTP result, for metrics
        self.domain = ctx.settings.sender.domain
        self.sender = ctx.settings.sender.addr_spec
        self._stop = asyncio.Event()

    async def batch(self, stop: asyncio.Event) -> int:
        """Send one batch of due outbox messages (until `stop`); return how many were claimed."""
        self._stop = stop
        return await self._outbox_batch()

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
        # The newsletter whose From and footer each message carries: it goes through that
        # newsletter's relay when it names one, as its issues do (its domain may be verified
        # with that provider only).
        newsletter_of: dict[int, int] = {}
        for c in claims:
            try:
                data[c.outbox_id], newsletter_id = await self._outbox_bytes(c, date)
                if newsletter_id is not None:
                    newsletter_of[c.outbox_id] = newsletter_id
            except Exception as exc:  # a broken template must not block the rest
                log.exception("outbox message %d could not be built", c.outbox_id)
                data[c.outbox_id] = RenderFailed(str(exc))
        tests = {
            c.outbox_id: c.issue_id for c in claims if c.kind == OutboxKind.test and c.issue_id
        }
        by_newsletter, by_issue = await self.db(
            lambda ses: outbox.newsletter_relays(ses, newsletter_of.values(), tests.values())
        )
        relays = {row: by_newsletter.get(n) for row, n in newsletter_of.items()}
        relays.update({row: by_issue.get(issue) for row, issue in tests.items()})

        def build(claim_id: int) -> bytes:
            value = data[claim_id]
            if isinstance(value, Exception):
                raise value
            return value

        def record(results: list[Result]) -> None:
            with session_scope(self.ctx.sessions) as ses:
                outbox.record_outbox(ses, self.owner, results, utcnow(), policy=self.policy)

        outcomes = await self._send_all(
            [(c.outbox_id, c.attempts, c.to_address, relays.get(c.outbox_id)) for c in claims],
            build,
            record,
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
        items: list[tuple[int, int, str, str | None]],
        build: Callable[[int], bytes],
        record: Callable[[list[Result]], None],
    ) -> dict[int, Outcome]:
        """Send (row id, attempts, address, relay) items over concurrent connections; record
        at the end."""
        queue: asyncio.Queue[tuple[int, int, str, str | None]] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        outcomes: dict[int, Outcome] = {}
        results: list[Result] = []
        withheld: dict[int, str] = {}

        async def one(
            conn: MailerConnection, row_id: int, attempts: int, to: str, relay: str | None
        ) -> None:
            res = await transmit(
                conn,
                self.limiter,
                self.sender,
                to,
                partial(build, row_id),
                stuffed=False,
                observe=self.observe,
                relay=relay,
            )
            if res.withheld:
                # No relay could take it (the pool paused the sends, saying why): it never
                # left, so it waits, uncounted, instead of using up its attempts.
                withheld[row_id] = res.reply
                return
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
            if withheld:
                # Back in a while, when a relay may have rested or the day turned (the pool
                # resumes the paused sends then too).
                until = utcnow() + timedelta(seconds=self.settings.relay_rest_seconds)
                why = next(iter(withheld.values()))
                await asyncio.shield(
                    self.db(
                        lambda ses: outbox.defer_outbox(ses, self.owner, list(withheld), until, why)
                    )
                )
        return outcomes

    async def _outbox_bytes(self, claim: OutboxClaim, date: str) -> tuple[bytes, int | None]:
        """Return the message's bytes, and the newsletter whose sender it carries (None: a test
        copy, which goes as its issue goes)."""
        tokens = self.ctx.tokens
        newsletter_id: int | None = None
        # Test copies are not deliveries: their links carry tokens for subscriber 0, which
        # verify but belong to nobody, so clicking them in a test copy changes nothing.
        sub_id = claim.subscriber_id or 0
        nonce = NOBODY_NONCE
        msgid = outbox_message_id(claim.outbox_id, self.domain)
        if claim.kind == OutboxKind.test and claim.issue_id is not None:
            prepared = await self.messages.prepared_issue(claim.issue_id, test=True)
            sub_id = 0
        elif claim.kind == OutboxKind.welcome:  # issue 12: list mail, filled like an issue
            heads = await self._mastheads(sub_id, ACTIVE)
            # One welcome for every newsletter taken: its links leave them all.
            head = replace(heads[0], several=False)
            newsletter_id = head.id
            names = [h.name for h in heads]
            welcome = await asyncio.to_thread(self.ctx.renderer.welcome_email, head, names)
            prepared = PreparedMessage.build(welcome, self.settings, masthead=head)
            # Its unsubscribe and preferences links must name this very reader (id + nonce).
            found = await self.db(
                lambda s: s.scalar(select(Subscriber.token_nonce).where(Subscriber.id == sub_id))
            )
            nonce = found or NOBODY_NONCE
        else:
            token = tokens.confirm_token(sub_id, claim.to_address)
            url = f"{self.settings.base_url}/confirm/{token}"
            reader = await self.db(
                lambda s: s.scalar(select(Subscriber.name).where(Subscriber.id == sub_id))
            )
            # The newsletters this one click confirms; the first one's sender and footer.
            heads = await self._mastheads(sub_id, PENDING)
            newsletter_id = heads[0].id

            def render() -> PreparedMessage:
                compiled = self.ctx.renderer.confirmation_email(
                    confirm_url=url,
                    reader_name=reader or "",
                    masthead=heads[0],
                    names=[h.name for h in heads],
                )
                return PreparedMessage.build(
                    compiled, self.settings, list_headers=False, masthead=heads[0]
                )

            prepared = await asyncio.to_thread(render)
        data = prepared.fill(
            to=claim.to_address,
            unsubscribe_token=tokens.unsubscribe_token(sub_id, nonce),
            preferences_token=tokens.preferences_token(sub_id, nonce),
            message_id=msgid,
            date=date,
        )
        return (self.signer.sign(data) if self.signer else data), newsletter_id

    async def _mastheads(self, subscriber_id: int, standings: tuple[str, ...]) -> list[Masthead]:
        """Return the mastheads of a reader's newsletters in these standings, as stored now."""
        rows = await self.db(lambda s: reader_newsletter_fields(s, subscriber_id, standings))
        return [resolve(self.settings, **fields) for fields in rows] or [
            from_settings(self.settings)
        ]
