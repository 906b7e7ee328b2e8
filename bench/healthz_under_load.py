"""Benchmark: how long /healthz takes while the server is loaded (issue 17: under 1 s always).

    python bench/healthz_under_load.py [--requests 100] [--database sqlite:///…|postgresql://…]

Serves the app on a loopback port (uvicorn in a thread, no worker), then fires REQUESTS
concurrent authenticated GET /issues/{id}/stats, then 60 console dashboards, from a separate
process while another process polls /healthz; prints the statuses and /healthz's worst and
time beside its ceiling.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

if not __package__:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx2

from app.config import Settings
from app.console.accounts import add_editor
from app.context import build_context
from app.db import make_engine, session_scope
from app.editors import create_editor_token
from bench.common import scratch_database
from tests.health_probe import HealthProbe
from tests.live_server import LiveServer
from tests.load import fire_at_once
from tests.smtp_server import free_port

CEILING = 1.0


def _run(url: str, database: str, count: int) -> None:
    engine = make_engine(database)
    settings = Settings(
        database_url=database,
        base_url=url,
        secret_keys=["bench"],
        from_address="Bench <bench@example.org>",
        var_dir=Path(tempfile.mkdtemp()),
        run_worker=False,
    )
    ctx = build_context(settings, engine=engine)
    with session_scope(ctx.sessions) as session:
        token = create_editor_token(session, "bench")
        add_editor(session, "bench@example.org", "Bench", "a long bench password")
    editor = {"Authorization": f"Bearer {token}"}
    with LiveServer(ctx, int(url.rsplit(":", 1)[1])), httpx2.Client(base_url=url) as client:
        issue = client.post(
            "/issues",
            json={"subject": "Bench", "blocks": [{"type": "markdown", "body": "hi"}]},
            headers=editor,
        ).json()
        client.post(
            "/editor/login",
            data={"email": "bench@example.org", "password": "a long bench password"},
        )
        cookies = dict(client.cookies)
        loads = {
            f"{count} × GET /issues/{{id}}/stats": [
                {"method": "GET", "path": f"/issues/{issue['id']}/stats", "headers": editor}
            ]
            * count,
            "60 × GET /editor/": [{"method": "GET", "path": "/editor/", "cookies": cookies}] * 60,
        }
        for name, requests in loads.items():
            started = time.monotonic()
            with HealthProbe(url) as probe:
                answers = fire_at_once(url, requests)
            took = time.monotonic() - started
            print(f"{name}: {dict(Counter(a.status for a in answers))} in {took:.1f} s")
            print(
                f"  /healthz worst {probe.worst:.2f} s (ceiling {CEILING:.1f} s), "
                f"answers {dict(Counter(probe.answers))}"
            )
    engine.dispose()


def main() -> None:
    """Time /healthz under concurrent load."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args()
    url = f"http://127.0.0.1:{free_port()}"
    with scratch_database(args.database) as database:  # SQLite unless a URL is given
        _run(url, database, args.requests)


if __name__ == "__main__":
    main()
