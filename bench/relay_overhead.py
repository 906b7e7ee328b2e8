"""Benchmark: the relay pool's own CPU per message, one plain relay and three with limits.

    python bench/relay_overhead.py [--messages 200000]

The relay's connection is a stand-in that answers at once, so what is timed is only what the
pool adds around each send (pick, quota, rate, accounting, metrics), beside the same stand-in
called directly. The end-to-end figure is bench/throughput.py; this isolates the pool's part.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from common import ROOT  # noqa: F401  (puts the repository on sys.path)

from app.relay_config import parse_relays
from app.sends.policy import Outcome
from app.sends.smtp.mailer import SendResult
from app.sends.smtp.relays import RelayPool

SENT = SendResult(Outcome.sent, "250 2.0.0 OK queued")


class Instant:
    """A connection that accepts every message at once."""

    async def send(self, *args: Any, **kwargs: Any) -> SendResult:
        """Accept."""
        return SENT


class InstantMailer:
    """Hands out Instant connections."""

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Instant]:
        """Yield one."""
        yield Instant()

    async def aclose(self) -> None:
        """Nothing to close."""


async def _time(conn: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await conn.send("a@example.org", "b@example.org", b"x", stuffed=True)
    return (time.perf_counter() - started) / n * 1e6


async def main(n: int) -> None:
    """Print µs per message: direct, through one plain relay, through three by weight."""
    direct = await _time(Instant(), n)
    print(f"direct stand-in connection: {direct:.2f} µs per message")
    for label, url in (
        ("one plain relay", "smtp+plain://127.0.0.1:2525"),
        (
            "three relays by weight",
            "smtp+plain://127.0.0.1:1?name=a,smtp+plain://127.0.0.1:2?name=b&weight=2,smtp+plain://127.0.0.1:3?name=c&weight=3",
        ),
    ):
        pool = RelayPool(parse_relays(url), timeout=5, max_idle=4, database_url="sqlite://")
        for relay in pool.relays:
            relay.mailer = InstantMailer()  # type: ignore[assignment]
        async with pool.connection() as conn:
            took = await _time(conn, n)
        for relay in pool.relays:
            relay.counted = 0  # nothing to write: the stand-in sent nothing
        print(f"{label}: {took:.2f} µs per message, {took - direct:+.2f} µs over the direct call")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    asyncio.run(main(parser.parse_args().messages))
