"""`morningpost serve` as a real process on a loopback port: the base URL it announces, and
X-Forwarded-For from a loopback peer not believed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sqlalchemy import select

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.models import Subscriber
from tests.helpers import ROOT, cli_env
from tests.smtp_server import free_port


def _post(url: str, body: dict[str, str], headers: dict[str, str]) -> int:
    data = json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_serve_does_not_believe_forwarded_for_from_loopback(
    settings: Settings, ctx: Context, tmp_path: Path
) -> None:
    """Rotating X-Forwarded-For from a loopback peer no longer escapes the per-IP limit."""
    port = free_port()
    env = {**cli_env(settings), "PYTHONPATH": str(ROOT), "MORNINGPOST_RUN_WORKER": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=5):
                    break
            except OSError:
                time.sleep(0.1)
        codes = [
            _post(
                f"{base}/subscribe",
                {"email": f"r{i}@example.org"},
                {"X-Forwarded-For": f"198.51.100.{i}"},
            )
            for i in range(22)
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert codes[:20] == [202] * 20 and codes[20:] == [429, 429]
    with session_scope(ctx.sessions) as session:
        assert set(session.scalars(select(Subscriber.consent_ip))) == {"127.0.0.1"}


def _serve_base_url(settings: Settings, tmp_path: Path, port: int, **env: str) -> str:
    """Start `serve --port`, read the start-up line naming the base URL, stop it."""
    full = {**cli_env(settings), "PYTHONPATH": str(ROOT), "MORNINGPOST_RUN_WORKER": "false", **env}
    full = {k: v for k, v in full.items() if v != ""}
    with subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=full,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                if "links use" in line:
                    return line.split("links use ", 1)[1].strip()
            raise AssertionError("serve exited without naming its base URL")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_base_url_follows_the_port_unless_set(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    line = _serve_base_url(settings, tmp_path, port, MORNINGPOST_BASE_URL="")
    assert line.startswith(f"http://127.0.0.1:{port} (from --host/--port")
    explicit = _serve_base_url(
        settings, tmp_path, free_port(), MORNINGPOST_BASE_URL="https://news.example.org"
    )
    assert explicit == "https://news.example.org (MORNINGPOST_BASE_URL)"
