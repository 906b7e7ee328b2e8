"""A reply that arrived while the worker's loop stalled past its deadline is read, not timed out.

After a stall (a long GC pause, a VM descheduled, a frozen cgroup) a loop may run its due
timers before it polls the socket: uvloop (the worker's loop) does. A reply already waiting
in the socket must still win over the timeout, or a message the relay accepted would turn
`unknown` and an editor's "resend unknown" would send it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import uvloop

from app.sends.smtp.wire import Reply, ReplyTimeout, _ReplyProtocol

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


@contextmanager
def prompt_relay(delay: float = 0.0) -> Iterator[int]:
    """Answer each line with a 250 after `delay`, from a thread (it answers while the loop
    stalls)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        # A client that timed out closes with the reply unread: a reset, not this relay's fault.
        with conn, contextlib.suppress(ConnectionError):
            while data := conn.recv(4096):
                time.sleep(delay)
                conn.sendall(b"250 ok\r\n" * data.count(b"\n"))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.close()
        thread.join(5)


async def stalled_exchange(port: int, timeout: float, stall: float) -> list[Reply]:
    """Send one line, stall the loop past the reply's deadline, then wait for the reply."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(
        lambda: _ReplyProtocol(loop), "127.0.0.1", port
    )
    protocol.transport = transport
    try:
        future = protocol.expect(1, timeout)
        transport.write(b"NOOP\r\n")
        time.sleep(stall)  # the loop stalls; the relay's answer lands in the socket meanwhile
        return await future
    finally:
        transport.close()


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_reply_that_came_during_a_stall_is_taken(loop: str) -> None:
    with prompt_relay() as port, asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        replies = runner.run(stalled_exchange(port, timeout=0.05, stall=0.3))
    assert [(r.code, r.message) for r in replies] == [(250, "ok")]


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_reply_that_never_comes_still_times_out(loop: str) -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    try:
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner, pytest.raises(ReplyTimeout):
            runner.run(stalled_exchange(listener.getsockname()[1], timeout=0.05, stall=0.1))
    finally:
        listener.close()


class _Staller(asyncio.Protocol):
    """A connection whose data_received stalls the loop (inside the loop's I/O phase)."""

    def __init__(self, stall: float) -> None:
        self.stall = stall
        self.stalled = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        time.sleep(self.stall)
        if not self.stalled.done():
            self.stalled.set_result(None)


async def stalled_in_io(port: int, timeout: float, stall: float) -> list[Reply]:
    """Send one line, then stall the loop in another connection's I/O callback.

    The reply reaches the socket during the stall, before its deadline; the deadline passes
    during the stall too. The loop's next turn must read the reply before it judges the time.
    """
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(
        lambda: _ReplyProtocol(loop), "127.0.0.1", port
    )
    protocol.transport = transport
    left, right = socket.socketpair()
    staller = _Staller(stall)
    other, _ = await loop.connect_accepted_socket(lambda: staller, left)
    try:
        future = protocol.expect(1, timeout)
        transport.write(b"NOOP\r\n")
        right.send(b"x")  # the other connection's data: its callback stalls the loop
        await staller.stalled
        return await future
    finally:
        transport.close()
        other.close()
        right.close()


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_reply_that_came_during_a_stall_in_io_is_taken(loop: str) -> None:
    # The relay answers after 20 ms, inside the 100 ms deadline; the loop stalls for 300 ms.
    with prompt_relay(delay=0.02) as port, asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        replies = runner.run(stalled_in_io(port, timeout=0.1, stall=0.3))
    assert [(r.code, r.message) for r in replies] == [(250, "ok")]
