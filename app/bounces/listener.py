"""An SMTP listener for bounces: accepts mail to VERP addresses (and the bare feedback address)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from app.bounces.service import record_inbound
from app.context import Context
from app.db import session_scope
from app.models import utcnow
from app.sends.verp import PREFIX, parse_verp

log = logging.getLogger("morningpost.bounces")

MAX_REPORT_BYTES = 10 * 1024 * 1024  # a DSN returns at most the original message


class BounceHandler:
    """aiosmtpd handler: 550 for unknown recipients, record each report in its own transaction."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def accepts(self, address: str) -> bool:
        """Tell whether mail to this address is ours to read."""
        local, _, domain = address.strip("<>").rpartition("@")
        if domain.lower() != self.ctx.settings.verp_domain:
            return False
        # bounces@ (no tag) receives feedback-loop reports, which carry the original headers.
        return local.lower() == PREFIX or parse_verp(address, self.ctx.settings) is not None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        """Accept bounce addresses only; refusing others keeps the listener from being a relay."""
        if not self.accepts(address):
            return "550 5.1.1 No such recipient here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Record the report; a database failure answers 451 so the sender retries later."""
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw or "").encode()
        rcpts = list(envelope.rcpt_tos)
        try:
            await asyncio.to_thread(self._record, data, rcpts)
        except Exception:
            log.exception("could not record an inbound report")
            return "451 4.3.0 Temporary failure, try again later"
        return "250 2.0.0 Report received"

    def _record(self, data: bytes, rcpts: list[str]) -> int:
        with session_scope(self.ctx.sessions) as session:
            events = record_inbound(session, data, "smtp", self.ctx.settings, utcnow(), rcpts)
            return len(events)


async def start_bounce_listener(ctx: Context, host: str, port: int) -> asyncio.Server:
    """Start serving on host:port in the running loop and return the server."""
    handler = BounceHandler(ctx)
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(
            handler,
            data_size_limit=MAX_REPORT_BYTES,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=ctx.settings.verp_domain,
        )

    server = await loop.create_server(factory, host=host, port=port)
    log.info("bounce listener on %s:%s for *@%s", host, port, ctx.settings.verp_domain)
    return server


async def run_bounce_listener(
    ctx: Context, host: str, port: int, stop: asyncio.Event | None = None
) -> None:
    """Serve until `stop` is set (or forever) — the body of `morningpost bounces`."""
    server = await start_bounce_listener(ctx, host, port)
    try:
        if stop is None:
            await server.serve_forever()
        else:
            await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
