"""The `morningpost` command run as a real subprocess against the test database and SMTP server."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.context import Context
from tests.helpers import add_subscribers, cli_env, new_issue
from tests.smtp_server import SMTPTestServer


def morningpost(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m app ARGS` with the test's configuration."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env={**cli_env(settings), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_editor_token_create_prints_a_working_token(settings: Settings, client: TestClient) -> None:
    result = morningpost(settings, "editor-token", "create", "night desk")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("mp_")
    assert client.get("/issues", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_bad_configuration_is_one_clear_line(settings: Settings) -> None:
    result = morningpost(settings, "migrate", MORNINGPOST_SMTP_URL="gopher://relay")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "MORNINGPOST_SMTP_URL" in lines[0]


def test_migrate_on_a_fresh_database(settings: Settings, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = morningpost(settings, "migrate", MORNINGPOST_DATABASE_URL=url)
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
    assert morningpost(settings, "dispatch").stdout.startswith("started 0")
    recipients = sorted(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert recipients == sorted(f"reader{i}@example.org" for i in range(6))
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["sent"] == 6


def test_subscribers_import_prints_a_summary(
    settings: Settings, client: TestClient, editor: dict[str, str], tmp_path: Path
) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text("email,name\nada@example.org,Ada\nnot-an-address,Bob\ngrace@example.org,\n")
    result = morningpost(settings, "subscribers", "import", str(csv))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["imported"] == 2 and summary["rejected_count"] == 1
    assert summary["rejected"][0]["row"] == 3
    listed = client.get("/subscribers", params={"status": "active"}, headers=editor).json()
    assert sorted(s["email"] for s in listed["items"]) == ["ada@example.org", "grace@example.org"]
