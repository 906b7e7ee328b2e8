"""Benchmark: the ledger alone on PostgreSQL — claiming and recording, by one and by two claimers.

    python bench/claims.py [--rows 40000] [--batch 250] [--database postgresql://…]

No SMTP: each claimer (a thread with its own connection, as a worker's database thread is)
claims a batch, records it `sent` 100 rows at a time, and repeats until the
send is done. Prints the time (and the claiming thread's own CPU) per claimed and per recorded
row, and rows/s overall, for one claimer and for two sharing the send through SKIP LOCKED.
Also the first and last claims' time, which shows whether a claim's cost grows as the send
proceeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

if not __package__:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.db import make_engine, make_sessionmaker, session_scope
from app.models import utcnow
from app.sends.policy import Outcome
from app.sends.store import ledger
from app.sends.store.rows import Result
from bench.common import frozen_send, scratch_database

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
FLUSH = 100


def run(database: str, rows: int, batch: int, claimers: int) -> None:
    """Freeze `rows` deliveries, drain them with `claimers` threads, print the figures."""
    with scratch_database(database) as url:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        frozen_send(engine, rows)
        figures: list[tuple[int, float, float, float, list[float]]] = []

        def drain(owner: str) -> None:
            claimed, claim_s, claim_cpu, record_s, each = 0, 0.0, 0.0, 0.0, []
            while True:
                t, cpu = time.perf_counter(), time.thread_time()
                with session_scope(sessions) as s:
                    claims = ledger.claim_batch(s, owner, batch, utcnow(), 300)
                each.append(time.perf_counter() - t)
                claim_s += each[-1]
                claim_cpu += time.thread_time() - cpu
                if not claims:
                    break
                for i in range(0, len(claims), FLUSH):
                    done = [
                        Result(c.delivery_id, c.attempts, Outcome.sent, "250 ok")
                        for c in claims[i : i + FLUSH]
                    ]
                    t = time.perf_counter()
                    with session_scope(sessions) as s:
                        ledger.record_results(s, owner, done, utcnow())
                    record_s += time.perf_counter() - t
                claimed += len(claims)
            figures.append((claimed, claim_s, claim_cpu, record_s, each[:-1]))

        started = time.perf_counter()
        threads = [threading.Thread(target=drain, args=(f"bench-{i}",)) for i in range(claimers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        engine.dispose()
    total = sum(f[0] for f in figures)
    assert total == rows, (total, rows)  # every row claimed exactly once
    for n, (claimed, claim_s, claim_cpu, record_s, each) in enumerate(figures):
        print(
            f"  claimer {n}: {claimed:,} rows; claim {claim_s / claimed * 1e6:.0f} µs/row "
            f"({claim_cpu / claimed * 1e6:.0f} µs of its thread's CPU), "
            f"record {record_s / claimed * 1e6:.0f} µs/row; first claim "
            f"{each[0] * 1e3:.1f} ms, last {each[-1] * 1e3:.1f} ms"
        )
    print(f"{claimers} claimer(s): {rows / elapsed:,.0f} rows/s claimed and recorded")


def main() -> None:
    """Parse arguments; run with one claimer, then two."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG))
    args = parser.parse_args()
    if not args.database.startswith("postgres"):
        parser.error("this benchmark is for PostgreSQL: pass --database postgresql://…")
    print(f"cores: {os.cpu_count()}; rows: {args.rows:,}; claim batch: {args.batch}")
    for claimers in (1, 2):
        run(args.database, args.rows, args.batch, claimers)


if __name__ == "__main__":
    main()
