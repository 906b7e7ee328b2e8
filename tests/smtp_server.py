"""A real SMTP server for tests: aiosmtpd on a free loopback port; can refuse, hang up, stall."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, TypeVar

from aiosmtpd.controller import Controller

T = TypeVar("T")
HANGUP = "hangup"  # close the connection after the message arrived, before answering
STALL = "stall"  # never answer the end of DATA (the client times out)


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def message(self) -> EmailMessage:
        """Parse the raw bytes."""
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


class ScriptedHandler:
    """Accept everything unless a script for the recipient says otherwise.

    `script[address]` is a queue of answers used one per DATA for that address: an SMTP reply
    like "451 4.3.0 Try again later", or HANGUP / STALL. When it is empty the answer is 250.
    """

    def __init__(self) -> None:
        # Notified whenever a DATA transaction is seen or a message accepted, so tests wait for
        # the fact itself (wait_for, wait_until) instead of sleeping and looking.
        self._lock = threading.Condition()
        self.reset()

    def reset(self) -> None:
        """Forget every message, script and setting: a fresh accepting server (shared fixture)."""
        # A test may replace a hook on this instance (handler.handle_MAIL = ...): drop it.
        for name in [n for n in vars(self) if n.startswith("handle_")]:
            delattr(self, name)
        with self._lock:
            # A message still in flight from the previous test (a delayed or stalled answer)
            # must not land in this test's list: handle_DATA drops it when this changed.
            self.generation = getattr(self, "generation", 0) + 1
            self.received: list[Received] = []
            self.script: dict[str, deque[str]] = defaultdict(deque)
            self.default_answer: str | None = None  # used for every address when no script
            self.attempts: dict[str, int] = defaultdict(int)
            self._set_defaults()

    def _set_defaults(self) -> None:
        self.stall_seconds = 60.0
        self.delay_seconds = 0.0  # a slow relay: wait this long before every answer
        # Under load: when more than busy_limit messages were accepted in the last busy_window
        # seconds, answer with busy_answers in turn (e.g. 421 and 451) instead of accepting.
        self.busy_limit: int | None = None
        self.busy_window = 1.0
        self.busy_answers: tuple[str, ...] = ("421 4.7.0 Too busy, slow down",)
        self.busy_refusals = 0
        self._accepted_at: deque[float] = deque()
        # Offer PIPELINING (RFC 2920), as Postfix and most relays do; aiosmtpd reads pipelined
        # commands correctly but does not announce it. False tests the one-by-one path.
        self.pipelining = True

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    def plan(self, address: str, *answers: str) -> None:
        """Queue answers for the next DATA transactions to `address`."""
        with self._lock:
            self.script[address.lower()].extend(answers)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rcpt = envelope.rcpt_tos[0].lower() if envelope.rcpt_tos else ""
        with self._lock:
            generation = self.generation
            self.attempts[rcpt] += 1
            self._lock.notify_all()
            queue = self.script.get(rcpt)
            answer = queue.popleft() if queue else self.default_answer
            if answer is None and self.busy_limit is not None:
                answer = self._busy_answer(time.monotonic())
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if answer == HANGUP:
            session.transport.close() if getattr(session, "transport", None) else None
            server.transport.close()
            return "421 4.4.2 closing"  # never reaches the client: the socket is closed
        if answer == STALL:
            await asyncio.sleep(self.stall_seconds)
            return "451 4.4.2 too late"
        if answer is not None and not answer.startswith("250"):
            return answer
        with self._lock:
            if generation != self.generation:
                return "250 2.0.0 OK queued"  # accepted for a test that is over
            self.received.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.content))
            )
            self._lock.notify_all()
        return "250 2.0.0 OK queued"

    def _busy_answer(self, now: float) -> str | None:
        """Return a refusal when the recent load is over the limit (called under the lock)."""
        recent = self._accepted_at
        while recent and recent[0] < now - self.busy_window:
            recent.popleft()
        if self.busy_limit is not None and len(recent) >= self.busy_limit:
            self.busy_refusals += 1
            return self.busy_answers[self.busy_refusals % len(self.busy_answers)]
        recent.append(now)
        return None

    def to(self, address: str) -> list[Received]:
        """Return the messages accepted for `address`."""
        with self._lock:
            return [r for r in self.received if address.lower() in (a.lower() for a in r.rcpt_tos)]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait until at least `count` messages arrived and return them all."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"expected {count} messages, got {len(self.received)}")
            return list(self.received)

    def wait_until(self, predicate: Callable[[ScriptedHandler], T], timeout: float = 30.0) -> T:
        """Wait until `predicate(handler)` is true (checked at each DATA seen) and return it.

        The predicate runs under the handler's lock, so it must only look at the handler.
        """
        with self._lock:
            result = self._lock.wait_for(lambda: predicate(self), timeout)
            if not result:
                raise AssertionError(f"condition not met within {timeout} s")
            return result


def free_port() -> int:
    """Return a free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SMTPTestServer:
    """aiosmtpd in its own thread, with the scripted handler."""

    def __init__(self) -> None:
        self.handler = ScriptedHandler()
        self.port = free_port()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10
        )

    @property
    def url(self) -> str:
        """Return the MORNINGPOST_SMTP_URL pointing here."""
        return f"smtp+plain://127.0.0.1:{self.port}"

    def start(self) -> SMTPTestServer:
        """Start serving."""
        self.controller.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.controller.stop()
