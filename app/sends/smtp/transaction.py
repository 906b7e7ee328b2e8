"""SMTPConnection: one relay session's SMTP transactions.

aiosmtplib sets each session up; the transactions run on a Wire (smtp_wire), pipelined when the
relay offers it, so a failure can be classified by *when* it happened: anything before the body
was handed over is safe to retry; once the body was written, a timeout or a hang-up means the
relay may have accepted it.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiosmtplib import SMTPException, SMTPResponseException

from app.sends.policy import Outcome
from app.sends.smtp.protocols import HandOver
from app.sends.smtp.results import _WITHHELD, SendResult, _by_code, _reply
from app.sends.smtp.stuffing import dot_stuff
from app.sends.smtp.wire import Reply, ReplyTimeout, Wire, WireError

if TYPE_CHECKING:  # pool.py builds these connections: the type only
    from app.sends.smtp.pool import SMTPMailer

__all__ = ["SMTPConnection"]

_PLAIN_PATH = re.compile(r"[!-;=?-~]+@[!-;=?-~]+")  # printable ASCII, no < > or spaces


def _path(address: str) -> bytes | None:
    """Return <address> for MAIL/RCPT when it is a plain ASCII addr-spec, else None.

    Addresses are validated and normalised when stored (ASCII only, no quoted local parts),
    so None means a row that should never have been stored; it fails rather than guessing.
    """
    if not _PLAIN_PATH.fullmatch(address):
        return None
    return b"<" + address.encode("ascii") + b">"


class SMTPConnection:
    """One relay session, set up by aiosmtplib, reconnected after a hang-up."""

    def __init__(self, mailer: SMTPMailer) -> None:
        self._mailer = mailer
        self._wire: Wire | None = None
        self._dirty = False  # a refused transaction left state on the server: RSET first
        self._turn = asyncio.Lock()  # from a message's MAIL to the end of its content
        self._queued: deque[_Envelope] = deque()  # sends waiting for the turn, oldest first
        self._sender: tuple[str, bytes | None] = ("", None)  # the last sender, as a path

    @property
    def usable(self) -> bool:
        """Tell whether the connection is open."""
        return self._wire is not None and self._wire.is_open

    async def _ready(self) -> Wire:
        wire = self._wire
        if wire is not None and wire.is_open and self._dirty:
            try:
                if (await wire.command(b"RSET")).code == 250:
                    self._dirty = False
                else:
                    wire.close()
            except WireError:
                pass  # reply() closed it
        if wire is None or not wire.is_open:
            smtp = self._mailer.new_client()
            try:
                await smtp.connect()  # greeting, EHLO, STARTTLS and AUTH as the URL asks
                if smtp.is_ehlo_or_helo_needed:
                    await smtp.ehlo()
                wire = self._wire = Wire(smtp, self._mailer.timeout)
            except BaseException:
                smtp.close()  # aiosmtplib leaves the socket open when STARTTLS or AUTH fails
                raise
            self._dirty = False
        return wire

    async def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        *,
        stuffed: bool = False,
        gate: HandOver | None = None,
        relay: str | None = None,
    ) -> SendResult:
        """Run one SMTP transaction and classify its outcome.

        Two sends may share a connection. When the next one is already waiting as a message's
        content is written, its MAIL, RCPT and DATA go out in the same write, before that
        message's reply (RFC 2920 3.1: content may start a command group), so the relay never
        waits for us. Only in the same write: an envelope sent on its own while a reply is
        outstanding meets the relay's Nagle delay (40 ms a message). The turn lock keeps each
        envelope and its content together; replies come back in the order written.
        """
        # The sender is the same for every message (unless VERP): check and encode it once.
        if sender != self._sender[0]:
            self._sender = (sender, _path(sender))
        mail, rcpt = self._sender[1], _path(recipient)
        if mail is None or rcpt is None:
            bad = sender if mail is None else recipient
            return SendResult(Outcome.failed, f"address cannot be sent as plain ASCII: {bad!r}")
        env = _Envelope(b"MAIL FROM:" + mail, b"RCPT TO:" + rcpt, gate=gate)
        self._queued.append(env)
        try:
            async with self._turn:
                outcome = await self._transaction(env, data if stuffed else dot_stuff(data))
        except BaseException:
            # Cancelled mid-transaction: the relay may sit in DATA, where the next MAIL would
            # be taken for content. Only a hang-up ends that safely.
            if env.wire is not None:
                env.wire.close()
            raise
        finally:
            # Still queued only if cancelled before its turn. (Not remove() and ValueError:
            # deque formats the missing item's repr into that error, on every message.)
            if env in self._queued:
                self._queued.remove(env)
        if isinstance(outcome, SendResult):
            return outcome
        # The next envelope rode along with this content: its sender has the turn already.
        return await self._final(*outcome)

    async def _transaction(
        self, env: _Envelope, content: bytes
    ) -> SendResult | tuple[Wire, asyncio.Future[list[Reply]]]:
        """Run one transaction holding the turn, to its reply unless the next one rode along.

        Returns the result, or the wire and the reply to wait for once the turn is released.
        """
        wire = env.wire  # set when the envelope rode along with the previous content
        if wire is None:  # not carried by the previous message's write: send it now
            self._queued.remove(env)
            if env.gate is not None and env.gate.refused():
                return _WITHHELD  # refused before anything went out
            try:
                wire = env.wire = await self._ready()
            except SMTPResponseException as exc:
                # Greeting, STARTTLS or AUTH refused: the relay's problem, never the recipient's.
                reply = f"connect: {_reply(exc.code, exc.message)}"
                alert = self._mailer.problem(exc)
                return SendResult(Outcome.retry, reply, alert=alert, before_data=True)
            except (SMTPException, WireError, OSError) as exc:
                reply = f"connect: {exc}"
                alert = self._mailer.problem(exc)
                return SendResult(Outcome.retry, reply, alert=alert, before_data=True)
        try:
            refused = await self._envelope(wire, env)
        except (WireError, OSError) as exc:
            # The content was not sent yet: whatever broke, nothing can have been accepted.
            wire.close()
            return SendResult(Outcome.retry, f"before DATA: {exc}", before_data=True)
        if refused is not None:
            self._dirty = True
            return refused._replace(before_data=True)
        if env.gate is not None and not await env.gate.wait():
            # DATA is open and this row may not be sent: only a hang-up closes DATA without
            # delivering something (a lone "." would send an empty message).
            wire.close()
            return _WITHHELD
        final = wire.expect(1)
        carried = self._queued.popleft() if wire.pipelining and self._queued else None
        if carried is not None:
            carried.replies, carried.wire = wire.expect(len(_EXPECTED)), wire
            content += carried.commands()
        try:
            wire.write(content)  # raises (nothing sent) if the socket is already closing
        except (WireError, OSError) as exc:
            wire.close()
            return SendResult(Outcome.retry, f"disconnected after 354: {exc}", before_data=True)
        if carried is None:
            # Nothing rode along: the next envelope must wait for this reply (see send()).
            return await self._final(wire, final)
        return wire, final

    async def _envelope(self, wire: Wire, env: _Envelope) -> SendResult | None:
        """Send MAIL, RCPT and DATA (unless already sent); return the refusal, or None on 354."""
        if env.replies is not None or wire.pipelining:
            if env.replies is None:
                # One write, three replies (RFC 2920: DATA ends the group), awaited together.
                env.replies = wire.expect(len(_EXPECTED))
                wire.write(env.commands())
            try:
                replies = await wire.wait(env.replies)
            except WireError as exc:
                # A relay that refuses with 421 closes the channel at once (RFC 5321 3.8):
                # the refusal came before the end, and it is the answer (a throttle), not a
                # broken line. Anything else that broke goes up as it was.
                replies = list(exc.replies)
                if all(r.code in ok for r, ok in zip(replies, _EXPECTED, strict=False)):
                    raise
        else:
            replies = []
            for command, ok in zip(env.lines(), _EXPECTED, strict=True):
                replies.append(reply := await wire.command(command))
                if reply.code not in ok:
                    break
        for reply, ok, may_suppress in zip(replies, _EXPECTED, (False, True, False), strict=False):
            if reply.code not in ok:
                if replies[-1].code == 354:
                    # DATA was opened although MAIL or RCPT failed: close it empty (RFC 2920).
                    await wire.command(b".")
                return _by_code(reply.code, reply.message, may_suppress=may_suppress)
        return None

    async def _final(self, wire: Wire, final: asyncio.Future[list[Reply]]) -> SendResult:
        """Wait for the reply to a message's content: once it was written, silence is unknown."""
        try:
            (reply,) = await wire.wait(final)
        except ReplyTimeout:
            return SendResult(Outcome.unknown, "timed out waiting for the reply to the message")
        except (WireError, OSError) as exc:
            return SendResult(Outcome.unknown, f"disconnected after the message was sent: {exc}")
        if reply.code == 250:
            return SendResult(Outcome.sent, str(reply))
        return _by_code(reply.code, reply.message, may_suppress=True)

    async def aclose(self) -> None:
        """Say QUIT politely; close regardless."""
        wire, self._wire = self._wire, None
        if wire is not None:
            await wire.quit()


_EXPECTED: tuple[tuple[int, ...], ...] = ((250,), (250, 251), (354,))  # MAIL, RCPT, DATA


@dataclass(eq=False)
class _Envelope:
    """One transaction's MAIL and RCPT, and where their replies will come once written."""

    mail: bytes
    rcpt: bytes
    gate: HandOver | None = None
    wire: Wire | None = None
    replies: asyncio.Future[list[Reply]] | None = None  # to MAIL, RCPT, DATA, once written

    def lines(self) -> tuple[bytes, bytes, bytes]:
        """Return the three command lines, without line ends."""
        return (self.mail, self.rcpt, b"DATA")

    def commands(self) -> bytes:
        """Return the three commands as one pipelined group."""
        return b"\r\n".join(self.lines()) + b"\r\n"
