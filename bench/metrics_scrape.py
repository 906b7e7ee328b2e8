"""Benchmark: how long one /metrics scrape takes with a big ledger (the gauges read the DB).

    python bench/metrics_scrape.py [--rows 1000000] [--database postgresql://…]

Builds a scratch database with one sending issue and ROWS deliveries (a third pending, the rest
sent), then times `generate_latest` on an app's registry five times and prints min and median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

if not __package__:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import generate_latest
from sqlalchemy import text

from app.db import make_engine, make_sessionmaker
from app.metrics.database import build_registry
from bench.common import add_subscribers, scratch_database


def main() -> None:
    """Fill a scratch ledger and time scrapes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    with scratch_database(args.database) as url:
        engine = make_engine(url)
        add_subscribers(engine, args.rows)
        now = "CURRENT_TIMESTAMP"
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO issues (slug, subject, preheader, blocks, status, recipients,"
                    " created_at, updated_at)"
                    f" VALUES ('b', 'b', '', '[]', 'sending', 0, {now}, {now})"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, created_at,"
                    " updated_at, sent_at) SELECT 1, id,"
                    " CASE WHEN id % 3 = 0 THEN 'pending' ELSE 'sent' END, 0,"
                    f" {now}, {now}, CASE WHEN id % 3 = 0 THEN NULL ELSE {now} END FROM subscribers"
                )
            )
            conn.execute(text("ANALYZE"))
        registry = build_registry(make_sessionmaker(engine))
        times = []
        for _ in range(5):
            started = time.perf_counter()
            generate_latest(registry)
            times.append(time.perf_counter() - started)
        engine.dispose()
    print(
        f"{args.rows:,} ledger rows ({engine.dialect.name}): one scrape "
        f"min {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
