"""A relay that holds each message a few milliseconds: the wire is then not the ceiling.

    python bench/slow_sink.py PORT DELAY_MS

Speaks just enough SMTP for the benchmarks (EHLO with PIPELINING, MAIL, RCPT, DATA, RSET,
NOOP, QUIT), answers in order, and waits DELAY_MS after each message's final dot before its
250, as a relay that scans or queues mail does. One connection takes one message at a time,
so C connections carry at most C / DELAY messages a second. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import uvloop

END = b"\r\n.\r\n"


async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Serve one connection until QUIT or EOF."""
    writer.write(b"220 slow-sink ESMTP\r\n")
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-slow-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                await reader.readuntil(END)
                await asyncio.sleep(delay)
                writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:  # MAIL, RCPT, RSET, NOOP
                writer.write(b"250 ok\r\n")
            await writer.drain()
    writer.close()


async def main(port: int, delay_ms: float) -> None:
    """Listen on 127.0.0.1:port until killed."""
    server = await asyncio.start_server(
        lambda r, w: session(r, w, delay_ms / 1000), "127.0.0.1", port, backlog=1000, limit=1 << 24
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), float(sys.argv[2])))
