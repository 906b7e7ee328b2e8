"""What the delivery benchmarks share: smtp-sink, a scratch database, subscribers in bulk.

Only loopback addresses ever receive traffic: the sink listens on 127.0.0.1 on a free port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, insert, make_url, text
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from app.migrate import upgrade_head  # noqa: E402
from app.models import Issue, Subscriber, utcnow  # noqa: E402
from app.sends.store.sends import start_send  # noqa: E402
from app.tokens import hash_secret  # noqa: E402

SINK = "/usr/sbin/smtp-sink"
SECRET = "bench-secret-key-not-for-production"
FROM = "The AI Morning Post <news@morningpost.test>"


def free_port() -> int:
    """Return a free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_sink() -> str:
    """Return the path of Postfix's smtp-sink, installing postfix with apt-get if missing."""
    found = shutil.which("smtp-sink") or (SINK if os.path.exists(SINK) else None)
    if found:
        return found
    print("smtp-sink not found: installing postfix with apt-get …", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "postfix"], check=True, env=env, timeout=900)
    return SINK


@contextlib.contextmanager
def smtp_sink(backlog: int = 1000, delay_ms: float = 0.0) -> Iterator[int]:
    """Run smtp-sink on a free loopback port for the duration; yield the port.

    With delay_ms, bench/slow_sink.py instead: a relay holding each message that long.
    """
    port = free_port()
    if delay_ms:
        cmd = [sys.executable, str(ROOT / "bench" / "slow_sink.py"), str(port), str(delay_ms)]
    else:
        cmd = [ensure_sink()]
        if os.geteuid() == 0:
            cmd += ["-u", "root"]  # it drops root to this user; "nobody" may lack a home
        # -m: accept many concurrent sessions; the sink answers 250 to everything.
        cmd += ["-m", "256", f"127.0.0.1:{port}", str(backlog)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("smtp-sink did not start")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    """Yield the URL of a fresh, migrated database: a temp SQLite file or a new PG database."""
    if not url or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
            db = f"sqlite:///{tmp}/bench.db"
            _migrate(db)
            yield db
        return
    base = make_url(url).set(drivername="postgresql+psycopg")
    admin = create_engine(base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    name = f"mp_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    scratch = base.set(database=name).render_as_string(hide_password=False)
    try:
        _migrate(scratch)
        yield scratch
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str) -> None:
    engine = make_engine(url)
    upgrade_head(engine)
    engine.dispose()


def add_subscribers(engine: Engine, count: int, start: int = 0) -> None:
    """Insert `count` active subscribers fast: one INSERT…SELECT on PG, executemany on SQLite."""
    now = utcnow()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "INSERT INTO subscribers (email, email_hash, name, status, consent_source,"
                    " created_at, status_changed_at, confirmed_at)"
                    " SELECT 'reader' || i || '@example.test',"
                    " encode(sha256(convert_to('reader' || i || '@example.test', 'UTF8')), 'hex'),"
                    " 'Reader ' || i, 'active', 'bench', :now, :now, :now"
                    " FROM generate_series(CAST(:a AS integer), CAST(:b AS integer)) AS i"
                ),
                {"now": now, "a": start, "b": start + count - 1},
            )
            return
        rows = [
            {
                "email": f"reader{i}@example.test",
                "email_hash": hash_secret(f"reader{i}@example.test"),
                "name": f"Reader {i}",
                "status": "active",
                "consent_source": "bench",
                "created_at": now,
                "status_changed_at": now,
                "confirmed_at": now,
            }
            for i in range(start, start + count)
        ]
        conn.execute(insert(Subscriber.__table__), rows)


def frozen_send(engine: Engine, rows: int) -> int:
    """Add `rows` readers and start a send to all of them; return the issue's id."""
    sessions = make_sessionmaker(engine)
    add_subscribers(engine, rows)
    with session_scope(sessions) as s:
        issue = Issue(slug="bench", subject="Bench", preheader="", blocks=[])
        s.add(issue)
        s.flush()
        issue_id = issue.id
    with session_scope(sessions) as s:
        start_send(s, issue_id, utcnow())
    return issue_id


def worker_env(
    database_url: str, smtp_port: int | None, var_dir: Path, **extra: str
) -> dict[str, str]:
    """Return the environment of a `python -m app worker` subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MORNINGPOST_")}
    env.update(
        PYTHONPATH=str(ROOT),
        MORNINGPOST_DATABASE_URL=database_url,
        MORNINGPOST_SMTP_URL=f"smtp+plain://127.0.0.1:{smtp_port}" if smtp_port else "",
        MORNINGPOST_SECRET_KEYS=SECRET,
        MORNINGPOST_FROM=FROM,
        MORNINGPOST_VAR_DIR=str(var_dir),
        MORNINGPOST_POLL_INTERVAL_SECONDS="0.05",
        **extra,
    )
    return env


def start_workers(n: int, env: dict[str, str], cwd: Path) -> list[subprocess.Popen[bytes]]:
    """Start n `python -m app worker` processes, logging to files in cwd; wait for each."""
    procs = []
    prefix = os.environ.get("BENCH_WORKER_PREFIX", "")
    for i in range(n):
        log = cwd / f"worker-{i}.log"
        with log.open("wb") as out:  # a file, not a pipe: an unread pipe would block the worker
            procs.append(
                subprocess.Popen(
                    # BENCH_WORKER_PREFIX runs each worker under a profiler, e.g.
                    # "py-spy record --format raw -o /tmp/worker-{i}.txt --"
                    [*prefix.format(i=i).split(), sys.executable, "-m", "app", "worker"],
                    env=env,
                    cwd=cwd,
                    stdout=subprocess.DEVNULL,
                    stderr=out,
                )
            )
        deadline = time.monotonic() + 60
        while b"started" not in log.read_bytes():
            if procs[-1].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM the workers (graceful) and wait for them.

    Under BENCH_WORKER_PREFIX the process is the profiler: SIGINT makes py-spy write its file.
    """
    for p in procs:
        if p.poll() is None:
            profiled = os.environ.get("BENCH_WORKER_PREFIX")
            p.send_signal(signal.SIGINT if profiled else signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class CpuMeter:
    """Where the CPU went between start() and stop(): by process kind, from /proc (Linux).

    Workers are named by pid; smtp-sink and postgres by command; the kernel's softirq time
    (loopback TCP is mostly that) comes from /proc/stat. Figures are in cores (1.0 = one core
    busy the whole time), so on a 2-core machine they add up to at most 2.
    """

    def __init__(self, workers: list[int]) -> None:
        self.workers = set(workers)
        self._start: tuple[dict[str, float], float, float] = ({}, 0.0, 0.0)
        self._t0 = 0.0
        self.seconds: dict[str, float] = {}  # CPU seconds by kind, after stop()

    def _kind(self, pid: int, command: str) -> str:
        if pid in self.workers:
            return "worker"
        if pid == os.getpid():
            return "this benchmark (API, polling)"
        return command if command in ("smtp-sink", "postgres") else "other"

    def _sample(self) -> tuple[dict[str, float], float, float]:
        """Return (seconds of CPU by kind, busy seconds of all cores, all seconds of all cores)."""
        tick = os.sysconf("SC_CLK_TCK")
        out: dict[str, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue  # gone already
            command = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2 :].split()
            kind = self._kind(int(entry.name), command)
            out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        cpu = [int(x) / tick for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        out["kernel softirq (loopback TCP)"] = cpu[6]
        idle = cpu[3] + cpu[4]  # idle + iowait
        return out, sum(cpu) - idle, sum(cpu)

    def start(self) -> None:
        """Take the first sample."""
        self._start, self._t0 = self._sample(), time.monotonic()

    def stop(self) -> str:
        """Return one line: how busy all cores were, and the cores each kind used, since start()."""
        (end, busy, total), elapsed = self._sample(), max(time.monotonic() - self._t0, 1e-9)
        before, busy0, total0 = self._start
        self.seconds = {k: v - before.get(k, 0.0) for k, v in end.items()}
        used = {k: (v - before.get(k, 0.0)) / elapsed for k, v in end.items()}
        ranked = sorted(used.items(), key=lambda kv: -kv[1])
        parts = [f"{k} {v:.2f}" for k, v in ranked if v >= 0.01]
        share = (busy - busy0) / (total - total0) if total > total0 else 0.0
        return f"all cores {share:.0%} busy; cores used: " + ", ".join(parts)
