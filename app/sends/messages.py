"""Prepared messages: each issue rendered once per version, filled per reader (the render cache).

Moved from worker.py as it was (issue 18, item 4). The cache keeps CACHE_SIZE prepared issues
per process, keyed by (issue, updated_at, test copy); a stream reads each issue it sends once
(an edit or a fix is picked up by the next stream).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import replace
from email.utils import format_datetime
from typing import Any

from sqlalchemy import select

from app.context import Context
from app.db import OnThread
from app.models import Issue, utcnow
from app.rendering.masthead import resolve
from app.rendering.preview_link import with_preview_link
from app.sends.compose import PreparedMessage, delivery_bytes, envelope_sender
from app.sends.dkim import DkimSigner, feedback_id
from app.sends.store.frozen import frozen_content, newsletter_fields, newsletter_relay
from app.sends.store.ledger import Claim

log = logging.getLogger("morningpost.delivery")

CACHE_SIZE = 8  # prepared issues kept per process


class RenderFailed(Exception):
    """The issue could not be rendered; its claims are retried later."""


class MessageCache:
    """Give a stream each issue's prepared message and each reader's wire bytes."""

    def __init__(self, ctx: Context, db: OnThread, signer: DkimSigner | None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.db = db
        # DKIM is signed over each recipient's exact bytes; None when no key is configured.
        self.signer = signer
        self.sender = ctx.settings.sender.addr_spec
        self._prepared: OrderedDict[tuple[int, int, bool, Any], PreparedMessage] = OrderedDict()
        self._messages: dict[int, PreparedMessage | Exception] = {}
        self._relays: dict[int, str | None] = {}  # the relay each issue's newsletter names
        self._date = ("", 0.0)

    def new_stream(self) -> None:
        """Forget which issues the last stream read: an edit or a fix is picked up."""
        self._messages.clear()
        self._relays.clear()

    async def message_for(self, issue_id: int) -> PreparedMessage | Exception:
        """Return (and remember for this stream) the issue's prepared message, or why it failed."""
        if issue_id not in self._messages:
            # Read once per stream, like the content: a newsletter's new relay is picked up.
            self._relays[issue_id] = await self.db(lambda s: newsletter_relay(s, issue_id))
            try:
                self._messages[issue_id] = await self.prepared_issue(issue_id, test=False)
            except Exception as exc:
                # Nothing was sent, so a retry (with backoff, then failed) is safe and visible.
                log.exception("issue %d could not be rendered", issue_id)
                self._messages[issue_id] = exc
        return self._messages[issue_id]

    def relay_for(self, issue_id: int) -> str | None:
        """Return the relay the issue must go through (None: any relay of the pool)."""
        return self._relays.get(issue_id)

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
        # (time.monotonic, not the loop's clock: looking the loop up cost more than the rest.)
        now = time.monotonic()
        if now - self._date[1] >= 1.0:
            self._date = (format_datetime(utcnow(), usegmt=True), now)
        return self._date[0]

    async def prepared_issue(self, issue_id: int, *, test: bool) -> PreparedMessage:
        """Return the issue's PreparedMessage, rendering it once per (issue, version).

        A delivery renders the send's frozen content (one send is one version, whatever the
        live issue says now); a test copy renders the issue as it is being edited.
        """
        if test:
            row: Any = await self.db(
                lambda s: s.execute(
                    select(
                        Issue.subject,
                        Issue.preheader,
                        Issue.slug,
                        Issue.blocks,
                        Issue.version,
                        Issue.created_at,
                    ).where(Issue.id == issue_id)
                ).one()
            )
        else:
            row = await self.db(lambda s: frozen_content(s, issue_id, utcnow()))
        # An issue is told by its creation (a test copy's draft) or its freeze (a send) too:
        # SQLite gives a deleted draft's id to the next issue, whose version 1 must not be
        # served the deleted one's rendering.
        key = (issue_id, row.version, test, row.created_at if test else row.frozen_at)
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
                # Its "Read on the web" opens a signed preview: the archive has no page yet.
                compiled = with_preview_link(
                    compiled,
                    self.settings.base_url,
                    row.slug,
                    self.settings.secret_keys,
                    issue_id,
                    born=row.created_at,
                )
            headers = {"Feedback-ID": feedback_id(issue_id, self.settings)}
            return PreparedMessage.build(
                compiled, self.settings, extra_headers=headers, masthead=masthead
            )

        prepared = await asyncio.to_thread(render)  # premailer is slow: keep the loop free
        self._prepared[key] = prepared
        while len(self._prepared) > CACHE_SIZE:
            self._prepared.popitem(last=False)
        return prepared
