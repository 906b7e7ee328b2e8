"""CaptureMailer: the built-in stand-in for a relay, which writes each message to an .eml file."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from app.sends.policy import Outcome
from app.sends.smtp.protocols import HandOver, MailerConnection
from app.sends.smtp.results import _WITHHELD, SendResult
from app.sends.smtp.stuffing import _unstuff

__all__ = ["CaptureMailer"]

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<?([^>\r\n]*)>?", re.IGNORECASE | re.MULTILINE)
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class CaptureConnection:
    """Saves each message as an .eml file instead of sending it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

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
        """Write the message to `<Message-ID>.eml` (atomically) and report it sent."""
        if gate is not None and not await gate.wait():
            return _WITHHELD
        if stuffed:
            data = _unstuff(data)
        match = _MESSAGE_ID.search(data[:4096])
        name = match.group(1).decode("ascii", "replace") if match else uuid.uuid4().hex
        path = self.directory / (_UNSAFE.sub("_", name)[:200] + ".eml")
        try:
            await asyncio.to_thread(_write_atomic, path, data)
        except OSError as exc:
            return SendResult(Outcome.retry, f"capture: {exc}")
        return SendResult(Outcome.sent, f"250 captured as {path.name}")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


class CaptureMailer:
    """The built-in stand-in for a relay: accepts everything, keeps it on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[MailerConnection]:
        """Return a capture connection."""
        yield CaptureConnection(self.directory)

    async def aclose(self) -> None:
        """Nothing to close."""
