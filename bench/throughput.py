"""Benchmark: end-to-end send rate against the raw SMTP ceiling, to a local smtp-sink.

    python bench/throughput.py [--subscribers 20000] [--connections 4] [--workers 1]
        [--database postgresql://postgres@127.0.0.1:5432/test]

1. The raw ceilings: the same message bytes (the seed issue, filled for one reader) sent over
   the same number of connections to the same sink by a bare aiosmtplib loop, by a raw loop
   that pipelines MAIL/RCPT/DATA (the one the target is taken against), and by a raw loop that
   also sends the next envelope with each content, as the worker does (for comparison).
2. The project, end to end: POST /issues/{id}/send through the app (TestClient), delivered by
   `python -m app worker` processes, until the last delivery is recorded (max sent_at).
With --workers N > 1 (PostgreSQL only) it also runs one worker first and prints the speed-up.
With --personalised it also sends the seed issue with merge tags ({{ name }} and an attribute
with a default in every body; half the readers have the attribute) and prints its rate beside
the plain one and their ratio (target ≥ 0.8).
A PostgreSQL URL names the server: a scratch database is created there and dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiosmtplib
import uvloop
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update

from app.config import load_settings
from app.context import build_context
from app.db import session_scope
from app.editors import create_editor_token
from app.main import create_app
from app.models import Delivery, Issue, Subscriber, utcnow
from app.rendering.blocks import parse_blocks
from app.sends.compose import PreparedMessage, delivery_bytes
from app.sends.dkim import generate_key
from app.sends.smtp.mailer import dot_stuff
from app.sends.store.rows import Claim
from bench.common import (
    FROM,
    ROOT,
    SECRET,
    CpuMeter,
    add_subscribers,
    scratch_database,
    smtp_sink,
    start_workers,
    stop_workers,
    worker_env,
)

TIME_LIMIT = 600.0  # seconds for one end-to-end run; a stuck send stops the benchmark


async def raw_ceiling(port: int, data: bytes, count: int, connections: int, lean: bool) -> float:
    """Send `count` copies over `connections` reused aiosmtplib connections; return msgs/s.

    lean=False is the textbook loop (SMTP.sendmail, which re-scans the body with regexes);
    lean=True drives MAIL, RCPT, DATA and writes the body dot-stuffed once, as our mailer
    does: the tighter ceiling, and the one the ratio is taken against.
    """
    sender = FROM.split("<")[1].rstrip(">")
    stuffed = dot_stuff(data)
    per = [count // connections + (1 if i < count % connections else 0) for i in range(connections)]

    async def one(n: int, offset: int) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, use_tls=False)
        await smtp.connect()
        for i in range(n):
            rcpt = f"reader{offset + i}@example.test"
            if not lean:
                await smtp.sendmail(sender, [rcpt], data)
                continue
            await smtp.mail(sender)
            await smtp.rcpt(rcpt)
            await smtp.execute_command(b"DATA")
            assert smtp.protocol is not None
            smtp.protocol.write(stuffed)
            reply = await smtp.protocol.read_response(timeout=30)
            assert reply.code == 250, reply
        await smtp.quit()

    start = time.perf_counter()
    offsets = [sum(per[:i]) for i in range(connections)]
    await asyncio.gather(*(one(n, o) for n, o in zip(per, offsets, strict=True)))
    return count / (time.perf_counter() - start)


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    """Read one SMTP reply (its continuation lines too); return its last line."""
    while (line := await reader.readline())[3:4] == b"-":
        pass
    return line


async def pipelined_ceiling(port: int, data: bytes, count: int, connections: int) -> float:
    """Send `count` copies over plain asyncio streams, MAIL/RCPT/DATA in one write; msgs/s.

    No aiosmtplib, no ledger: the tightest loop for the technique our mailer uses (RFC 2920
    pipelining), so the project's rate can be read against it too.
    """
    sender = FROM.split("<")[1].rstrip(">").encode()
    stuffed = dot_stuff(data)
    per = [count // connections + (1 if i < count % connections else 0) for i in range(connections)]

    async def one(n: int, offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await read_reply(reader)
        writer.write(b"EHLO bench.test\r\n")
        await read_reply(reader)
        for i in range(n):
            rcpt = f"reader{offset + i}@example.test".encode()
            writer.write(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (sender, rcpt))
            codes = [(await read_reply(reader))[:3] for _ in range(3)]
            assert codes == [b"250", b"250", b"354"], codes
            writer.write(stuffed)
            assert (await read_reply(reader))[:3] == b"250"
        writer.write(b"QUIT\r\n")
        await read_reply(reader)
        writer.close()

    start = time.perf_counter()
    offsets = [sum(per[:i]) for i in range(connections)]
    await asyncio.gather(*(one(n, o) for n, o in zip(per, offsets, strict=True)))
    return count / (time.perf_counter() - start)


async def chained_ceiling(port: int, data: bytes, count: int, connections: int) -> float:
    """The pipelined loop plus what the worker does since: the next message's MAIL, RCPT and
    DATA go in the same write as a message's content, before its reply (RFC 2920 3.1).

    Printed for comparison only; the target ratio is taken against pipelined_ceiling.
    """
    sender = FROM.split("<")[1].rstrip(">").encode()
    stuffed = dot_stuff(data)
    per = [count // connections + (1 if i < count % connections else 0) for i in range(connections)]

    def envelope(rcpt: bytes) -> bytes:
        return b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (sender, rcpt)

    async def one(n: int, offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await read_reply(reader)
        writer.write(b"EHLO bench.test\r\n")
        await read_reply(reader)
        writer.write(envelope(f"reader{offset}@example.test".encode()))
        for i in range(n):
            codes = [(await read_reply(reader))[:3] for _ in range(3)]
            assert codes == [b"250", b"250", b"354"], codes
            last = i == n - 1
            nxt = b"" if last else envelope(f"reader{offset + i + 1}@example.test".encode())
            writer.write(stuffed + nxt)
            assert (await read_reply(reader))[:3] == b"250"
        writer.write(b"QUIT\r\n")
        await read_reply(reader)
        writer.close()

    start = time.perf_counter()
    offsets = [sum(per[:i]) for i in range(connections)]
    await asyncio.gather(*(one(n, o) for n, o in zip(per, offsets, strict=True)))
    return count / (time.perf_counter() - start)


def ceilings(
    port: int, data: bytes, count: int, connections: int, quick: bool = False
) -> tuple[float, float, float]:
    """Measure and print the raw ceilings; return the lean aiosmtplib one and the pipelined.

    quick: only the raw pipelined loop (the one the target is taken against).
    """
    rates = {}
    loops = (
        (
            "raw aiosmtplib ceiling, SMTP.sendmail loop",
            lambda: raw_ceiling(port, data, count, connections, False),
        ),
        (
            "raw aiosmtplib ceiling, lean MAIL/RCPT/DATA loop",
            lambda: raw_ceiling(port, data, count, connections, True),
        ),
        (
            "raw pipelined loop (asyncio streams, no aiosmtplib)",
            lambda: pipelined_ceiling(port, data, count, connections),
        ),
        (
            "raw pipelined loop, next envelope with the content",
            lambda: chained_ceiling(port, data, count, connections),
        ),
    )
    for name, run in loops:
        if quick and "pipelined" not in name:
            rates[name] = float("nan")
            continue
        meter = CpuMeter([])
        meter.start()
        # The same event loop as `morningpost worker` (uvloop), so the ceiling is a fair one.
        rates[name] = rate = uvloop.run(run())
        print(f"{name}, {connections} connections: {rate:,.0f} msg/s")
        print(f"  {meter.stop()}")
        own = meter.seconds.get("this benchmark (API, polling)", 0.0)
        print(f"  CPU of the sending loop: {own / count * 1e6:,.0f} µs per message")
    return rates[loops[1][0]], rates[loops[2][0]], rates[loops[3][0]]


def relay_ceiling(port: int, data: bytes, count: int) -> float:
    """Measure what the sink itself can take: the pipelined loop over many connections."""
    meter = CpuMeter([])
    meter.start()
    rate = uvloop.run(pipelined_ceiling(port, data, count, 32))
    print(f"the relay's own ceiling (pipelined loop, 32 connections): {rate:,.0f} msg/s")
    print(f"  {meter.stop()}")
    return rate


def sample_bytes(ctx_settings_url: str, port: int) -> bytes:
    """Return the seed issue's message as one reader would get it."""
    settings = load_settings(database_url=ctx_settings_url, secret_keys=[SECRET], from_address=FROM)
    ctx = build_context(settings)
    payload = json.loads((ROOT / "examples" / "ai-morning-post.json").read_text("utf-8"))
    compiled = ctx.renderer.compile_issue(
        subject=payload["subject"],
        preheader=payload.get("preheader", ""),
        slug="sample",
        blocks=parse_blocks(payload["blocks"]),
    )
    prepared = PreparedMessage.build(compiled, settings)
    data = prepared.fill(
        to="reader1@example.test",
        unsubscribe_token=ctx.tokens.unsubscribe_token(1),
        preferences_token=ctx.tokens.preferences_token(1),
        message_id="<mp.1.1@morningpost.test>",
        date="Mon, 07 Dec 2026 06:00:00 +0000",
    )
    ctx.close()
    return data


def fill_cost(db_url: str, n: int = 1000, rounds: int = 7) -> None:
    """Print the per-reader fill (delivery_bytes) of the seed issue, plain and personalised.

    The two alternate for `rounds` rounds of `n` readers and the fastest round of each is
    printed: on a shared machine the minimum is the cost, the rest is waiting for a core.
    """
    settings = load_settings(database_url=db_url, secret_keys=[SECRET], from_address=FROM)
    ctx = build_context(settings)
    payload = json.loads((ROOT / "examples" / "ai-morning-post.json").read_text("utf-8"))
    prepared = []
    for issue in (payload, personalise(payload)):
        compiled = ctx.renderer.compile_issue(
            subject=issue["subject"],
            preheader=issue.get("preheader", ""),
            slug="sample",
            blocks=parse_blocks(issue["blocks"]),
        )
        prepared.append(PreparedMessage.build(compiled, settings))
    best = [float("inf"), float("inf")]
    date = "Mon, 07 Dec 2026 06:00:00 +0000"
    for r in range(rounds):
        # Fresh names each round: a reader's value is encoded once, as in a real send.
        claims = [
            Claim(i, 1, i, f"r{i}@example.test", 1, f"<m.{i}@x>", "abcdefgh", f"Reader {r}.{i}")
            for i in range(n)
        ]
        for k, message in enumerate(prepared):
            start = time.perf_counter()
            for claim in claims:
                delivery_bytes(message, claim, ctx.tokens, date, None)
            best[k] = min(best[k], (time.perf_counter() - start) / n * 1e6)
    print(
        f"  fill per reader (fastest of {rounds} rounds): plain {best[0]:.1f} µs, "
        f"personalised ({len(prepared[1].tags)} merge tags) {best[1]:.1f} µs"
    )
    ctx.close()


def end_to_end(
    db_url: str,
    port: int,
    workers: int,
    connections: int,
    batch: int,
    n: int,
    personalised: bool = False,
    **extra_env: str,
) -> float:
    """POST a send of the seed issue, let `workers` processes deliver it; return msgs/s.

    personalised: the issue carries merge tags (see personalise).
    """
    settings = load_settings(
        database_url=db_url,
        secret_keys=[SECRET],
        from_address=FROM,
        base_url="http://127.0.0.1:8000",
        run_worker=False,
    )
    ctx = build_context(settings)
    with session_scope(ctx.sessions) as s:
        token = create_editor_token(s, f"bench-{time.time_ns()}")
    headers = {"Authorization": f"Bearer {token}"}
    payload = json.loads((ROOT / "examples" / "ai-morning-post.json").read_text("utf-8"))
    payload["slug"] = f"bench-{time.time_ns()}"
    if personalised:
        payload = personalise(payload)
    with tempfile.TemporaryDirectory(prefix="mp-bench-var-") as var:
        env = worker_env(
            db_url,
            port,
            Path(var),
            MORNINGPOST_SMTP_CONNECTIONS=str(connections),
            MORNINGPOST_BATCH_SIZE=str(batch),
            **extra_env,
        )
        procs = start_workers(workers, env, Path(var))
        try:
            with TestClient(create_app(settings, context=ctx)) as client:
                resp = client.post("/issues", json=payload, headers=headers)
                issue_id = resp.json()["id"]
                start = utcnow()
                meter = CpuMeter([p.pid for p in procs])
                meter.start()
                resp = client.post(f"/issues/{issue_id}/send", headers=headers)
                assert resp.status_code == 202, resp.text
                assert resp.json()["recipients"] == n, resp.json()
            deadline = time.monotonic() + TIME_LIMIT
            while time.monotonic() < deadline:
                time.sleep(0.25)
                with session_scope(ctx.sessions) as s:
                    status = s.scalar(select(Issue.status).where(Issue.id == issue_id))
                if status != "sending":
                    break
            else:
                raise RuntimeError("the send did not finish in time")
            with session_scope(ctx.sessions) as s:
                by_kind = meter.stop()
                first = s.scalar(
                    select(func.min(Delivery.sent_at)).where(Delivery.issue_id == issue_id)
                )
                last = s.scalar(
                    select(func.max(Delivery.sent_at)).where(Delivery.issue_id == issue_id)
                )
                sent = s.scalar(
                    select(func.count()).where(
                        Delivery.issue_id == issue_id, Delivery.status == "sent"
                    )
                )
        finally:
            stop_workers(procs)
        assert last is not None and first is not None
        span = (last - first).total_seconds()
        commits = commit_summary(Path(var), n, workers * connections, span)
    ctx.close()
    assert sent == n, (sent, n)
    steady = n / max(span, 1e-9)
    print(
        f"  {workers} worker(s): first delivery {(first - start).total_seconds():.2f} s after "
        f"the POST (freeze + render); steady rate {steady:,.0f} msg/s"
    )
    print(f"  {by_kind}")
    cpu = meter.seconds.get("worker", 0.0)
    print(f"  CPU of the worker process(es): {cpu / n * 1e6:,.0f} µs per message")
    print(f"  {commits}")
    return n / (last - start).total_seconds()


COMMITS = re.compile(
    r"stream done: .*commits (\d+) \(([\d.]+) rows handed over, ([\d.]+) ms each\)"
    r"(?:; content waited for its hand-over (\d+) times \(([\d.]+) ms each\))?"
)


def commit_summary(var: Path, messages: int, connections: int, duration: float) -> str:
    """Sum the workers' "stream done" lines: commits, and the waits at the 354 they caused.

    A stream hands rows over only as commits free room in the window, so its pace is about
    window / (2 × commit time): these figures say whether commits or the wire set it. A wait
    is a connection standing at the relay's 354, content ready, until its row's hand-over is
    committed: the relay idles on that connection meanwhile.
    """
    count, rows, seconds, waits, waited = 0, 0.0, 0.0, 0, 0.0
    for log in var.glob("worker-*.log"):
        for m in COMMITS.finditer(log.read_text("utf-8", "replace")):
            n = int(m[1])
            count += n
            rows += n * float(m[2])
            seconds += n * float(m[3]) / 1e3
            if m[4]:
                waits += int(m[4])
                waited += int(m[4]) * float(m[5]) / 1e3
    if not count:
        return "commits of the worker(s): none logged"
    lines = (
        f"commits of the worker(s): {count:,}, {rows / count:.1f} rows handed over and "
        f"{seconds / count * 1e3:.1f} ms each (at most {rows / count / (seconds / count):,.0f} "
        f"rows/s handed over by one stream's serial commits)"
    )
    if waits:
        idle = waited / max(connections * duration, 1e-9)
        lines += (
            f"\n  content that waited at the 354 for its hand-over: {waits / messages:.0%} of "
            f"messages, {waited / waits * 1e3:.1f} ms each (the relay idle for it "
            f"{idle:.0%} of each connection's time)"
        )
    return lines


def personalise(payload: dict[str, Any]) -> dict[str, Any]:
    """Return the seed issue with merge tags in every Markdown body and in its titles."""
    blocks = []
    for block in payload["blocks"]:
        block = dict(block)
        if isinstance(block.get("body"), str):
            block["body"] = (
                'Good morning, {{ name | "reader" }}. '
                + block["body"]
                + '\n\nPicked for {{ attr.company | "your team" }}.'
            )
        if block.get("type") in ("lead", "article"):
            block["title"] = block["title"] + " ({{ name }})"
        blocks.append(block)
    return {**payload, "blocks": blocks}


def give_attributes(engine: Engine) -> None:
    """Give every other reader a company (ten different ones, some not ASCII)."""
    with engine.begin() as conn:
        for k in range(10):
            company = f"Zoë & Söhne {k}" if k % 2 else f"Acme <{k}>"
            conn.execute(
                update(Subscriber)
                .where(Subscriber.id % 20 == 2 * k)
                .values(attributes={"company": company})
            )


def main() -> None:
    """Parse arguments, run both measurements, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections per worker")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--handover-window",
        type=int,
        default=0,
        help="also run with MORNINGPOST_HANDOVER_WINDOW=N (a wider crash window, fewer commits)",
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--quick", action="store_true", help="only the raw pipelined loops as ceilings"
    )
    parser.add_argument(
        "--relay-delay-ms",
        type=float,
        default=0.0,
        help="a relay holding each message this long (bench/slow_sink.py) instead of smtp-sink",
    )
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", ""))
    parser.add_argument(
        "--dkim", action="store_true", help="also send DKIM-signed and print signed/unsigned"
    )
    parser.add_argument(
        "--personalised",
        action="store_true",
        help="also send an issue with merge tags and print personalised/plain",
    )
    args = parser.parse_args()
    if args.workers > 1 and not args.database.startswith("postgres"):
        parser.error("several workers need --database postgresql://… (SQLite is single-worker)")
    print(
        f"cores: {os.cpu_count()}, subscribers: {args.subscribers:,}, "
        f"connections per worker: {args.connections}, batch size: {args.batch_size}"
    )
    with (
        smtp_sink(delay_ms=args.relay_delay_ms) as port,
        scratch_database(args.database) as db_url,
    ):
        sink = (
            f"slow sink ({args.relay_delay_ms:g} ms a message)"
            if args.relay_delay_ms
            else "smtp-sink"
        )
        print(f"sink: {sink} on 127.0.0.1:{port}; database: {db_url.split('@')[-1]}")
        from app.db import make_engine

        engine = make_engine(db_url)
        add_subscribers(engine, args.subscribers)
        give_attributes(engine)
        engine.dispose()
        data = sample_bytes(db_url, port)
        print(f"message: {len(data):,} bytes")
        raw, piped, chained = ceilings(port, data, args.subscribers, args.connections, args.quick)
        one = end_to_end(db_url, port, 1, args.connections, args.batch_size, args.subscribers)
        print(
            f"end to end, 1 worker: {one:,.0f} msg/s  "
            f"ratio to the raw pipelined loop: {one / piped:.2f} (target ≥ 0.85); "
            f"to the loop chaining envelopes as the worker does: {one / chained:.2f}; "
            f"to the lean aiosmtplib loop: {one / raw:.2f}"
        )
        if args.personalised:
            fill_cost(db_url)
            mine = end_to_end(
                db_url,
                port,
                1,
                args.connections,
                args.batch_size,
                args.subscribers,
                personalised=True,
            )
            print(
                f"end to end, 1 worker, personalised: {mine:,.0f} msg/s; plain: {one:,.0f} msg/s  "
                f"personalised/plain: {mine / one:.2f} (target ≥ 0.8)"
            )
        if args.handover_window:
            wide = end_to_end(
                db_url,
                port,
                1,
                args.connections,
                args.batch_size,
                args.subscribers,
                MORNINGPOST_HANDOVER_WINDOW=str(args.handover_window),
            )
            print(
                f"end to end, 1 worker, HANDOVER_WINDOW={args.handover_window}: {wide:,.0f} "
                f"msg/s  ratio to the raw pipelined loop: {wide / piped:.2f} (a crash may leave "
                f"up to {args.handover_window} unknown instead of {2 * args.connections})"
            )
        if args.dkim:
            with tempfile.TemporaryDirectory(prefix="mp-bench-dkim-") as keys:
                key = Path(keys) / "dkim.pem"
                domain = FROM.rsplit("@", 1)[1].rstrip(">")
                generate_key(key, "bench", domain)
                signed = end_to_end(
                    db_url,
                    port,
                    1,
                    args.connections,
                    args.batch_size,
                    args.subscribers,
                    MORNINGPOST_DKIM_SELECTOR="bench",
                    MORNINGPOST_DKIM_DOMAIN=domain,
                    MORNINGPOST_DKIM_PRIVATE_KEY_PATH=str(key),
                )
            print(
                f"end to end, 1 worker, DKIM-signed: {signed:,.0f} msg/s  "
                f"signed/unsigned: {signed / one:.2f}"
            )
        if args.workers > 1:
            relay = relay_ceiling(port, data, args.subscribers)
            many = end_to_end(
                db_url, port, args.workers, args.connections, args.batch_size, args.subscribers
            )
            print(
                f"end to end, {args.workers} workers: {many:,.0f} msg/s  "
                f"speed-up over 1 worker: {many / one:.2f}× (target ≥ 1.6×); "
                f"{many / relay:.0%} of what the relay itself can take"
            )


if __name__ == "__main__":
    main()
