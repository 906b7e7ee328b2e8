"""Benchmark: the public pages under a spike, beside the same process's fixed-page ceiling.

    python bench/pages.py [--seconds 2] [--rounds 5] [--connections 32] [--issues 30]
        [--database postgresql://postgres@127.0.0.1:5432/test]

Starts `python -m app serve` (uvicorn, httptools, uvloop, its delivery worker idle) against a
scratch database holding `--issues` sent issues of the seed content (examples/ai-morning-post.json),
then points wrk (apt package `wrk`, installed when missing) with `--connections` connections at
each route for `--seconds` seconds, `--rounds` times, each time right after a run on the
ceiling: /robots.txt, a small fixed page served by the same process through the same
middlewares. A route's ratio is the median of its rate over the ceiling's just before it; the
server's CPU time per request is printed too, as neighbours on a shared machine disturb it
less. Only 127.0.0.1 ever receives traffic.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

if not __package__:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.db import make_engine, make_sessionmaker, session_scope
from app.models import Issue, IssueStatus
from app.rendering.blocks import parse_blocks
from bench.common import FROM, ROOT, SECRET, free_port, scratch_database

SEED = ROOT / "examples" / "ai-morning-post.json"
CEILING = "/robots.txt"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class Figures:
    """What wrk measured on one route."""

    rate: float  # requests per second
    mean_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # non-2xx/3xx answers and socket errors
    cpu_us: float = 0.0  # the server process's CPU time per answered request


def ensure_wrk() -> str:
    """Return the path of wrk, installing the apt package when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing it with apt-get …", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, timeout=900)
    return shutil.which("wrk") or "/usr/bin/wrk"


def seed_issues(database_url: str, count: int) -> list[str]:
    """Store `count` sent issues of the seed content, one a day back from today; return slugs."""
    seed = json.loads(SEED.read_text())
    engine = make_engine(database_url)
    today = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    slugs = []
    with session_scope(make_sessionmaker(engine)) as session:
        for i in range(count):
            day = today - timedelta(days=i)
            blocks = [
                {**b, "date": f"{day:%A}, {day.day} {day:%B %Y}"} if b["type"] == "masthead" else b
                for b in seed["blocks"]
            ]
            slug = f"{day:%Y-%m-%d}-{seed['slug'].split('-', 3)[-1]}"
            session.add(
                Issue(
                    slug=slug,
                    subject=seed["subject"],
                    preheader=seed.get("preheader", ""),
                    blocks=parse_blocks(blocks),
                    status=IssueStatus.sent,
                    recipients=20_000,
                    started_at=day,
                    finished_at=day + timedelta(minutes=10),
                )
            )
            slugs.append(slug)
    engine.dispose()
    return slugs


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def serve(database_url: str, workdir: Path) -> Iterator[tuple[str, int]]:
    """Run `python -m app serve` on a free loopback port; yield its base URL and pid."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MORNINGPOST_")}
    env.update(
        PYTHONPATH=str(ROOT),
        MORNINGPOST_DATABASE_URL=database_url,
        MORNINGPOST_SECRET_KEYS=SECRET,
        MORNINGPOST_FROM=FROM,
        MORNINGPOST_VAR_DIR=str(workdir / "var"),
        MORNINGPOST_BASE_URL=f"http://127.0.0.1:{port}",
    )
    log = workdir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer,
            ):
                if answer.status == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ms(value: str) -> float:
    found = re.fullmatch(r"([\d.]+)([a-z]+)", value)
    if found is None:
        raise RuntimeError(f"wrk printed a latency of {value!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def run_wrk(
    wrk: str, url: str, seconds: float, connections: int, headers: tuple[str, ...] = ()
) -> Figures:
    """Run wrk against one URL and return its figures."""
    cmd = [wrk, "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    for header in headers:
        cmd += ["-H", header]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    latency = re.search(r"Latency\s+(\S+)\s+\S+\s+(\S+)", out)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)  # the distribution's line
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not (latency and p99 and rate):
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket:
        errors += sum(int(n) for n in socket.groups())
    return Figures(
        float(rate.group(1)),
        _ms(latency.group(1)),
        _ms(p99.group(1)),
        _ms(latency.group(2)),
        errors,
    )


def etag_of(url: str) -> str:
    """Return the ETag a GET of `url` carries (empty when none)."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        return str(answer.headers.get("ETag") or "")


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    """Measure the ceiling and each public route, round after round; print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="one wrk run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--issues", type=int, default=30)
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--ceiling", default=CEILING, help="the fixed-page route to compare to")
    args = parser.parse_args()
    wrk = ensure_wrk()
    runs: dict[str, list[Figures]] = {}
    ratios: dict[
        str, list[tuple[float, float]]
    ] = {}  # (req/s, CPU) against the ceiling just before
    with (
        scratch_database(args.database) as url,
        tempfile.TemporaryDirectory(prefix="mp-pages-") as tmp,
    ):
        slugs = seed_issues(url, args.issues)
        with serve(url, Path(tmp)) as (base, pid):
            issue = f"/archive/{slugs[len(slugs) // 2]}"
            routes: list[tuple[str, str, tuple[str, ...]]] = [
                ("issue page", issue, ()),
                ("archive", "/archive", ()),
                ("home", "/", ()),
                ("feed", "/archive/feed.xml", ()),
                ("healthz", "/healthz", ()),
                ("sign-up form", "/subscribe", ()),  # where the readers go next: cached too
            ]
            etag = etag_of(base + issue)
            if etag:
                routes.append(("issue page 304", issue, (f"If-None-Match: {etag}",)))

            def measure(path: str, headers: tuple[str, ...] = ()) -> Figures:
                before = cpu_seconds(pid)
                figures = run_wrk(wrk, base + path, args.seconds, args.connections, headers)
                answered = figures.rate * args.seconds
                used = cpu_seconds(pid) - before
                return replace(figures, cpu_us=used / answered * 1e6 if answered else 0)

            for _, path, headers in [("ceiling", args.ceiling, ()), *routes]:  # warm: first renders
                run_wrk(wrk, base + path, 1, args.connections, headers)
            # Each route right after a ceiling run, round after round: on this shared machine a
            # neighbour's burst then lands on one pair, and the medians of the pairs' ratios
            # leave it out.
            for _ in range(args.rounds):
                for name, path, headers in routes:
                    ceiling = measure(args.ceiling)
                    figures = measure(path, headers)
                    runs.setdefault("ceiling", []).append(ceiling)
                    runs.setdefault(name, []).append(figures)
                    ratios.setdefault(name, []).append(
                        (figures.rate / ceiling.rate, ceiling.cpu_us / figures.cpu_us)
                    )
    db = "PostgreSQL" if args.database else "SQLite"
    print(
        f"\npublic pages, one `serve` process, {db}, {args.issues} sent issues; wrk"
        f" {args.connections} connections, {args.seconds:g} s a run; each route {args.rounds}"
        f" times, each time right after the ceiling ({args.ceiling}, a small fixed page)\n"
        "figures are medians; ratio = the route's req/s over the ceiling's just before it;"
        " cpu µs = the server's CPU time per request (less disturbed by neighbours),"
        " its ratio the ceiling's over the route's\n"
    )
    print(
        f"{'route':<15} {'path':<30} {'req/s':>7} {'mean ms':>8} {'p99 ms':>7} {'max ms':>7}"
        f" {'ratio':>6} {'cpu µs':>7} {'ratio':>6} {'errors':>6}  ratio per run"
    )
    for name, path, _ in [("ceiling", args.ceiling, ()), *routes]:
        figures = runs[name]
        pairs = ratios.get(name, [(1.0, 1.0)])
        shown = path if len(path) <= 30 else path[:29] + "…"
        print(
            f"{name:<15} {shown:<30} {_median([f.rate for f in figures]):>7,.0f}"
            f" {_median([f.mean_ms for f in figures]):>8.1f}"
            f" {_median([f.p99_ms for f in figures]):>7.1f} {max(f.max_ms for f in figures):>7.0f}"
            f" {_median([r for r, _ in pairs]):>6.2f} {_median([f.cpu_us for f in figures]):>7.0f}"
            f" {_median([c for _, c in pairs]):>6.2f} {sum(f.errors for f in figures):>6}  "
            + " ".join(f"{r:.2f}" for r, _ in pairs)
        )


if __name__ == "__main__":
    main()
