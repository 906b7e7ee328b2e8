"""The `morningpost` commands against the test database and SMTP server, run in-process.

Two `dispatch --wait` runs racing stay real processes (the race is between processes); the
entry point, exit codes and long-running commands as processes: tests/e2e/test_cli_process.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.context import Context
from app.sends.verp import webhook_secret
from tests.cli_support import run_cli
from tests.helpers import add_subscribers, cli_env, new_issue
from tests.smtp_server import SMTPTestServer


def test_editor_token_create_prints_a_working_token(settings: Settings, client: TestClient) -> None:
    result = run_cli(settings, "editor-token", "create", "night desk")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("mp_")
    assert client.get("/issues", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_migrate_on_a_fresh_database(settings: Settings, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = run_cli(settings, "migrate", MORNINGPOST_DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fresh.db").exists()


def test_two_dispatches_at_once_send_once(
    settings: Settings,
    ctx: Context,
    client: TestClient,
    editor: dict[str, str],
    smtp_server: SMTPTestServer,
) -> None:
    add_subscribers(ctx, 6)
    issue = new_issue(client, editor)
    when = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    client.post(f"/issues/{issue['id']}/send", json={"send_at": when}, headers=editor)
    subprocess.run(["sleep", "1.2"], check=True)
    env = cli_env(settings)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "dispatch", "--wait"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    started = sorted(out for out, _ in outputs)
    assert started[0].startswith("started 0 issue(s)")
    assert started[1].startswith(f"started 1 issue(s): {issue['id']}")
    # A third run, after the fact, changes nothing.
    assert run_cli(settings, "dispatch").stdout.startswith("started 0")
    recipients = sorted(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert recipients == sorted(f"reader{i}@example.org" for i in range(6))
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["sent"] == 6


def test_subscribers_import_prints_a_summary(
    settings: Settings, client: TestClient, editor: dict[str, str], tmp_path: Path
) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text("email,name\nada@example.org,Ada\nnot-an-address,Bob\ngrace@example.org,\n")
    result = run_cli(settings, "subscribers", "import", str(csv))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["imported"] == 2 and summary["rejected_count"] == 1
    assert summary["rejected"][0]["row"] == 3
    listed = client.get("/subscribers", params={"status": "active"}, headers=editor).json()
    assert sorted(s["email"] for s in listed["items"]) == ["ada@example.org", "grace@example.org"]


def test_dkim_keygen_prints_the_record_and_never_overwrites(
    settings: Settings, tmp_path: Path
) -> None:
    key = tmp_path / "dkim.pem"
    args = ("dkim", "keygen", "--selector", "mp", "--domain", "morningpost.test", "--out", str(key))
    result = run_cli(settings, *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('mp._domainkey.morningpost.test. IN TXT ( "v=DKIM1; k=rsa; p=')
    assert key.stat().st_mode & 0o077 == 0
    before = key.read_bytes()
    again = run_cli(settings, *args)
    assert again.returncode == 1 and "refusing" in again.stderr
    assert key.read_bytes() == before


def test_webhook_secret_is_the_one_the_webhook_checks(settings: Settings) -> None:
    result = run_cli(settings, "webhook-secret")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == webhook_secret(settings)
