"""Benchmark: the worker's commit path alone — CPU and latency per commit, no SMTP.

    python bench/pg_commit.py [--rows 20000] [--group 4] [--database postgresql://…]

Freezes `rows` deliveries, claims them all, then commits from an event loop as a stream does:
each commit records the previous group's results (`sent`) and hands the next group over.
Prints the worker-side CPU per commit and per message (process time, every thread) and the
wall time per commit (a stream's rate is capped near window / (2 × that)).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

if not __package__:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.db import make_engine, make_sessionmaker, session_scope
from app.models import utcnow
from app.sends.policy import Outcome, RetryPolicy
from app.sends.store import ledger
from app.sends.store.paths import commit_path
from app.sends.store.rows import Result
from bench.common import frozen_send, scratch_database

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


async def drive(engine_url: str, ids: list[int], group: int, owner: str) -> tuple[float, float]:
    """Commit every group of `ids`; return (CPU seconds, wall seconds)."""
    engine = make_engine(engine_url)
    path = commit_path(engine, owner, RetryPolicy())
    try:
        groups = [ids[i : i + group] for i in range(0, len(ids), group)]
        # A first commit opens the connection and prepares the statement: not counted.
        await path.commit([], groups[0], utcnow())
        previous = groups[0]
        cpu, wall = time.process_time(), time.perf_counter()
        for handed in [*groups[1:], []]:
            results = [Result(i, 1, Outcome.sent, "250 2.0.0 Ok: queued as ABC") for i in previous]
            marked = await path.commit(results, handed, utcnow())
            assert marked == set(handed), (len(marked or ()), len(handed))
            previous = handed
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        path.close()
        engine.dispose()


def run(database: str, rows: int, group: int) -> None:
    """Freeze `rows` deliveries, claim them, commit them `group` at a time; print figures."""
    with scratch_database(database) as url:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        frozen_send(engine, rows)
        with session_scope(sessions) as s:
            claims = ledger.claim_batch(s, "bench", rows, utcnow(), 3600)
        engine.dispose()
        ids = [c.delivery_id for c in claims]
        cpu, wall = asyncio.run(drive(url, ids, group, "bench"))
    commits = len(ids) // group
    print(
        f"group {group}: {commits:,} commits; CPU {cpu / commits * 1e6:.0f} µs/commit, "
        f"{cpu / len(ids) * 1e6:.0f} µs/msg; wall {wall / commits * 1e3:.2f} ms/commit, "
        f"{len(ids) / wall:,.0f} msg/s"
    )


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG))
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; rows: {args.rows:,}; database: {args.database.split('@')[-1]}")
    run(args.database, args.rows, args.group)


if __name__ == "__main__":
    main()
