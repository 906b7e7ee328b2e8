"""Benchmark: a worker's peak memory does not grow with the list.

    python bench/memory.py [--small 10000] [--large 200000] [--database postgresql://…]

For each size, a fresh scratch database gets that many subscribers and a started send of the
seed issue; one `python -m app worker` delivers it to a local smtp-sink, and its peak RSS
(VmHWM from /proc, else ru_maxrss) is read when the send is done. Prints both peaks and their
ratio. Targets: large ≤ 1.2 × small, and < 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from app.config import load_settings
from app.context import build_context
from app.db import session_scope
from app.issues.schemas import IssueIn
from app.issues.service import create_issue, send_issue
from app.models import Issue, utcnow
from bench.common import (
    FROM,
    ROOT,
    SECRET,
    add_subscribers,
    scratch_database,
    smtp_sink,
    start_workers,
    stop_workers,
    worker_env,
)

TIME_LIMIT = 1200.0  # seconds for one send


def peak_rss_mb(pid: int) -> float:
    """Return a live process's peak resident set size in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def one_run(database: str | None, port: int, subscribers: int, connections: int) -> float:
    """Send the seed issue to `subscribers` readers with one worker; return its peak RSS in MB."""
    with scratch_database(database) as db_url, tempfile.TemporaryDirectory() as var:
        settings = load_settings(database_url=db_url, secret_keys=[SECRET], from_address=FROM)
        ctx = build_context(settings)
        add_subscribers(ctx.engine, subscribers)
        payload = json.loads((ROOT / "examples" / "ai-morning-post.json").read_text("utf-8"))
        with session_scope(ctx.sessions) as s:
            issue = create_issue(s, IssueIn.model_validate(payload), ctx.renderer)
            issue_id = issue.id
            send_issue(s, issue_id, None, utcnow(), ctx.renderer)
        env = worker_env(db_url, port, Path(var), MORNINGPOST_SMTP_CONNECTIONS=str(connections))
        started = time.monotonic()
        (proc,) = start_workers(1, env, Path(var))
        try:
            while time.monotonic() - started < TIME_LIMIT:
                time.sleep(0.5)
                with session_scope(ctx.sessions) as s:
                    status = s.scalar(select(Issue.status).where(Issue.id == issue_id))
                if status != "sending":
                    break
            else:
                raise RuntimeError("the send did not finish in time")
            peak = peak_rss_mb(proc.pid)
        finally:
            stop_workers([proc])
        took = time.monotonic() - started
        print(f"{subscribers:>9,} subscribers: peak RSS {peak:6.1f} MB  ({took:.0f} s)", flush=True)
        ctx.close()
        return peak


def main() -> None:
    """Parse arguments, run both sizes, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", ""))
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; database: {args.database or 'SQLite (temporary file)'}")
    with smtp_sink() as port:
        small = one_run(args.database, port, args.small, args.connections)
        large = one_run(args.database, port, args.large, args.connections)
    print(
        f"ratio large/small: {large / small:.2f} (target ≤ 1.2); "
        f"large peak {large:.1f} MB (target < 200 MB)"
    )


if __name__ == "__main__":
    main()
