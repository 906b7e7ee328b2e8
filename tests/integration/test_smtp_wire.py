"""The pipelined SMTP transaction, against a relay scripted byte by byte on a loopback socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from app.sends.smtp.mailer import HandOver, Outcome, SendResult, SMTPMailer

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
EHLO_PIPELINING = b"250-relay.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
MESSAGE = b"Subject: hi\r\n\r\nbody\r\n"
ACCEPT_ENVELOPE = b"250 Ok\r\n250 Ok\r\n354 go ahead\r\n"  # MAIL, RCPT, DATA in one packet


@asynccontextmanager
async def relay(script: Script) -> AsyncIterator[tuple[str, list[bytes]]]:
    """Serve `script` for each connection on a free loopback port; yield (SMTP URL, lines read)."""
    seen: list[bytes] = []
    failures: list[BaseException] = []
    handlers: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        original = reader.readline

        async def readline() -> bytes:
            line = await original()
            seen.append(line)
            return line

        reader.readline = readline  # type: ignore[method-assign]
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        try:
            writer.write(b"220 relay.test ESMTP\r\n")
            assert (await reader.readline()).startswith(b"EHLO")
            await script(reader, writer)
        except Exception as exc:  # surfaced after the client is done
            failures.append(exc)
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"smtp+plain://127.0.0.1:{port}", seen
        # Each script ends once the client has said QUIT or hung up: let them finish.
        await asyncio.wait_for(asyncio.gather(*handlers), 5)
    finally:
        server.close()
        await server.wait_closed()
    if failures:
        raise failures[0]


async def read_body(reader: asyncio.StreamReader) -> bytes:
    """Read a DATA body up to its terminating dot line."""
    return await reader.readuntil(b"\r\n.\r\n")


async def read_envelope(reader: asyncio.StreamReader) -> list[bytes]:
    """Read the MAIL, RCPT and DATA lines of one transaction."""
    return [await reader.readline() for _ in range(3)]


async def accept_body_then_quit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """After a 354: take the body, queue it, and answer the client's QUIT."""
    await read_body(reader)
    writer.write(b"250 queued\r\n")
    assert await reader.readline() == b"QUIT\r\n"
    writer.write(b"221 bye\r\n")


async def send_all(url: str, recipients: list[str]) -> list[SendResult]:
    """Send MESSAGE to each recipient over one reused connection, then QUIT."""
    mailer = SMTPMailer(url, timeout=2)
    async with mailer.connection() as conn:
        results = [await conn.send("news@a.test", to, MESSAGE) for to in recipients]
    await mailer.aclose()
    return results


async def test_envelope_is_pipelined_and_split_replies_are_read_in_order() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(EHLO_PIPELINING)
        # Answer nothing until MAIL, RCPT and DATA are all here: a client that waited for
        # each reply would stall and time out.
        assert await read_envelope(reader) == [
            b"MAIL FROM:<news@a.test>\r\n",
            b"RCPT TO:<r@b.test>\r\n",
            b"DATA\r\n",
        ]
        writer.write(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")  # one packet, 3 replies
        assert (await read_body(reader)).startswith(b"Subject: hi")
        writer.write(b"250-2.0.0 queued\r\n")  # a multi-line reply split across packets
        await writer.drain()
        await asyncio.sleep(0.05)  # not a wait for a fact: it makes the two lines two packets
        writer.write(b"250 2.0.0 as 4XYZ\r\n")
        assert await reader.readline() == b"QUIT\r\n"
        writer.write(b"221 bye\r\n")

    async with relay(script) as (url, _):
        (result,) = await send_all(url, ["r@b.test"])
    assert result.outcome is Outcome.sent
    assert result.reply == "250 2.0.0 queued\n2.0.0 as 4XYZ"


async def test_refused_rcpt_with_data_opened_sends_an_empty_message_then_rsets() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(EHLO_PIPELINING)
        await read_envelope(reader)
        # A relay that opens DATA although the only recipient was refused.
        writer.write(b"250 Ok\r\n550 5.1.1 No such user\r\n354 go ahead\r\n")
        assert await reader.readline() == b".\r\n"  # closed empty, no body sent
        writer.write(b"554 5.5.1 No valid recipients\r\n")
        assert await reader.readline() == b"RSET\r\n"
        writer.write(b"250 Ok\r\n")
        await read_envelope(reader)
        writer.write(ACCEPT_ENVELOPE)
        await accept_body_then_quit(reader, writer)

    async with relay(script) as (url, seen):
        refused, sent = await send_all(url, ["gone@b.test", "here@b.test"])
    assert (refused.outcome, refused.suppress) == (Outcome.failed, True)
    assert refused.reply == "550 5.1.1 No such user"
    assert sent.outcome is Outcome.sent
    assert not any(line.startswith(b"Subject") for line in seen[:6])  # no body for gone@


async def test_garbage_before_the_body_is_a_retry_and_the_next_send_reconnects() -> None:
    connections = 0

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.write(EHLO_PIPELINING)
        await read_envelope(reader)
        if connections == 1:
            writer.write(b"hello, I am not SMTP\r\n")
            await reader.read()  # the client hangs up
            return
        writer.write(ACCEPT_ENVELOPE)
        await accept_body_then_quit(reader, writer)

    async with relay(script) as (url, _):
        first, second = await send_all(url, ["r@b.test", "r@b.test"])
    assert first.outcome is Outcome.retry
    assert "before DATA" in first.reply and "not an SMTP reply" in first.reply
    assert second.outcome is Outcome.sent
    assert connections == 2


async def test_no_reply_after_the_body_is_unknown() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(EHLO_PIPELINING)
        await read_envelope(reader)
        writer.write(ACCEPT_ENVELOPE)
        await read_body(reader)
        await reader.read()  # say nothing until the client gives up and hangs up

    async with relay(script) as (url, _):
        mailer = SMTPMailer(url, timeout=0.3)
        async with mailer.connection() as conn:
            result = await conn.send("news@a.test", "r@b.test", MESSAGE)
            assert not conn.usable  # type: ignore[attr-defined]
        await mailer.aclose()
    assert result.outcome is Outcome.unknown
    assert "timed out" in result.reply


async def test_a_relay_without_pipelining_gets_one_command_at_a_time() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"250-relay.test\r\n250 8BITMIME\r\n")
        for expected in (b"MAIL", b"RCPT", b"DATA"):
            line = await reader.readline()
            assert line.startswith(expected)
            await asyncio.sleep(0.02)  # a quiet window: the only way to see nothing is sent ahead
            assert not reader._buffer  # type: ignore[attr-defined]  # nothing sent ahead
            writer.write(b"354 go\r\n" if expected == b"DATA" else b"250 Ok\r\n")
        await accept_body_then_quit(reader, writer)

    async with relay(script) as (url, _):
        (result,) = await send_all(url, ["r@b.test"])
    assert result.outcome is Outcome.sent


async def send_two_at_once(
    url: str, gates: tuple[HandOver | None, HandOver | None] = (None, None), timeout: float = 2
) -> list[SendResult]:
    """Start two sends on one connection together, as two senders of a stream do."""
    mailer = SMTPMailer(url, timeout=timeout)
    async with mailer.connection() as conn:
        results = await asyncio.gather(
            *(
                conn.send("news@a.test", to, MESSAGE, gate=gate)
                for to, gate in zip(("one@b.test", "two@b.test"), gates, strict=True)
            )
        )
    await mailer.aclose()
    return list(results)


async def test_the_next_envelope_rides_with_the_content_before_its_reply() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(EHLO_PIPELINING)
        assert (await read_envelope(reader))[1] == b"RCPT TO:<one@b.test>\r\n"
        writer.write(ACCEPT_ENVELOPE)
        assert (await read_body(reader)).startswith(b"Subject: hi")
        # No reply to the first message yet: the second envelope must already be here
        # (RFC 2920 3.1), or this relay waits forever and the client times out.
        assert (await read_envelope(reader))[1] == b"RCPT TO:<two@b.test>\r\n"
        writer.write(b"250 first queued\r\n" + ACCEPT_ENVELOPE)  # one packet, in order
        await read_body(reader)
        writer.write(b"250 second queued\r\n")
        assert await reader.readline() == b"QUIT\r\n"
        writer.write(b"221 bye\r\n")

    async with relay(script) as (url, _):
        first, second = await send_two_at_once(url)
    assert (first.outcome, first.reply) == (Outcome.sent, "250 first queued")
    assert (second.outcome, second.reply) == (Outcome.sent, "250 second queued")


async def test_content_waits_for_its_hand_over_and_a_refusal_hangs_up_inside_data() -> None:
    """The envelope may go before the row is handed over; the content never does."""
    connections = 0

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.write(EHLO_PIPELINING)
        if connections == 1:
            await read_envelope(reader)
            writer.write(ACCEPT_ENVELOPE)
            # The hand-over is refused: the client must hang up, not send "." (which would
            # deliver an empty message) nor any content.
            assert await reader.read() == b""
            return
        await read_envelope(reader)
        writer.write(ACCEPT_ENVELOPE)
        await accept_body_then_quit(reader, writer)

    async with relay(script) as (url, seen):
        mailer = SMTPMailer(url, timeout=2)
        waited: list[bool] = []
        at_gate = asyncio.Event()
        async with mailer.connection() as conn:
            gate = HandOver(lambda: (waited.append(True), at_gate.set()))
            sending = asyncio.create_task(conn.send("news@a.test", "r@b.test", MESSAGE, gate=gate))
            await asyncio.wait_for(at_gate.wait(), 30)
            assert not sending.done() and waited == [True]  # standing at the 354
            gate.decided.set_result(False)
            refused = await sending
            assert refused.withheld and refused.outcome is Outcome.retry
            gate = HandOver(lambda: None)
            gate.decided.set_result(True)
            sent = await conn.send("news@a.test", "r@b.test", MESSAGE, gate=gate)
        await mailer.aclose()
    assert sent.outcome is Outcome.sent
    assert connections == 2
    assert b".\r\n" not in seen  # DATA was never closed with a lone dot


async def test_a_cancelled_send_inside_data_never_leaves_the_connection_for_the_next() -> None:
    connections = 0

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.write(EHLO_PIPELINING)
        await read_envelope(reader)
        writer.write(ACCEPT_ENVELOPE)
        if connections == 1:
            assert await reader.read() == b""  # hung up inside DATA, nothing else written
            return
        await accept_body_then_quit(reader, writer)

    async with relay(script) as (url, _):
        mailer = SMTPMailer(url, timeout=2)
        async with mailer.connection() as conn:
            at_gate = asyncio.Event()
            gate = HandOver(at_gate.set)  # never decided: the worker is told to stop
            sending = asyncio.create_task(conn.send("news@a.test", "r@b.test", MESSAGE, gate=gate))
            await asyncio.wait_for(at_gate.wait(), 30)  # inside DATA, waiting for the hand-over
            assert not sending.done()
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
            sent = await conn.send("news@a.test", "r@b.test", MESSAGE)
        await mailer.aclose()
    assert sent.outcome is Outcome.sent
    assert connections == 2


async def test_two_sends_at_once_to_a_relay_without_pipelining_take_turns() -> None:
    """Without PIPELINING the second envelope waits for the first message's reply."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"250-relay.test\r\n250 8BITMIME\r\n")
        for rcpt in (b"one@b.test", b"two@b.test"):
            for expected in (b"MAIL", b"RCPT", b"DATA"):
                line = await reader.readline()
                assert line.startswith(expected), line
                if expected == b"RCPT":
                    assert rcpt in line
                await asyncio.sleep(0.02)
                assert not reader._buffer  # type: ignore[attr-defined]  # nothing sent ahead
                writer.write(b"354 go\r\n" if expected == b"DATA" else b"250 Ok\r\n")
            await read_body(reader)
            await asyncio.sleep(0.02)
            assert not reader._buffer  # type: ignore[attr-defined]  # no envelope rode along
            writer.write(b"250 queued\r\n")
        assert await reader.readline() == b"QUIT\r\n"
        writer.write(b"221 bye\r\n")

    async with relay(script) as (url, _):
        first, second = await send_two_at_once(url)
    assert first.outcome is Outcome.sent and second.outcome is Outcome.sent
