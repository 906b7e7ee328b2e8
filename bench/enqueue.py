"""Benchmark: freezing a million recipients into the ledger on PostgreSQL.

    python bench/enqueue.py [--subscribers 1000000] [--database postgresql://postgres@127.0.0.1:5432/test]

A scratch database is created on that server (and dropped after), filled with active
subscribers by one INSERT … SELECT from generate_series, then start_send (the compare-and-set
to `sending` plus freeze_recipients, one INSERT … SELECT) is timed up to its commit.
Target: < 20 s for 1,000,000.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if not __package__:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from app.db import make_engine, make_sessionmaker, session_scope
from app.models import Issue, utcnow
from app.sends.store.sends import start_send
from bench.common import add_subscribers, scratch_database

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def main() -> None:
    """Parse arguments, seed, time the freeze, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG))
    args = parser.parse_args()
    if not args.database.startswith("postgres"):
        parser.error("this benchmark is for PostgreSQL: pass --database postgresql://…")
    print(f"cores: {os.cpu_count()}; subscribers: {args.subscribers:,}")
    with scratch_database(args.database) as url:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        started = time.perf_counter()
        add_subscribers(engine, args.subscribers)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE subscribers"))
        print(f"seeded subscribers in {time.perf_counter() - started:.1f} s")
        with session_scope(sessions) as s:
            issue = Issue(slug="bench", subject="Bench", preheader="", blocks=[])
            s.add(issue)
            s.flush()
            issue_id = issue.id
        started = time.perf_counter()
        with session_scope(sessions) as s:
            count = start_send(s, issue_id, utcnow())
        took = time.perf_counter() - started
        engine.dispose()
    print(f"froze {count:,} recipients in {took:.1f} s ({count / took:,.0f} rows/s; target < 20 s)")


if __name__ == "__main__":
    main()
