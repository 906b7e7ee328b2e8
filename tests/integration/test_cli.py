"""The `morningpost` command run as a real subprocess against the test database and SMTP server."""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.models import Delivery, Subscriber, SubscriberStatus
from app.sends.verp import verp_address, webhook_secret
from tests.helpers import ROOT, add_subscribers, cli_env, new_issue
from tests.smtp_server import SMTPTestServer, free_port


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


def test_dkim_keygen_prints_the_record_and_never_overwrites(
    settings: Settings, tmp_path: Path
) -> None:
    key = tmp_path / "dkim.pem"
    args = ("dkim", "keygen", "--selector", "mp", "--domain", "morningpost.test", "--out", str(key))
    result = morningpost(settings, *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('mp._domainkey.morningpost.test. IN TXT ( "v=DKIM1; k=rsa; p=')
    assert key.stat().st_mode & 0o077 == 0
    before = key.read_bytes()
    again = morningpost(settings, *args)
    assert again.returncode == 1 and "refusing" in again.stderr
    assert key.read_bytes() == before


def test_webhook_secret_is_the_one_the_webhook_checks(settings: Settings) -> None:
    result = morningpost(settings, "webhook-secret")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == webhook_secret(settings)


def test_bounce_listener_records_a_dsn(
    settings: Settings, ctx: Context, client: TestClient, editor: dict[str, str]
) -> None:
    [sub_id] = add_subscribers(ctx, 1)
    issue = new_issue(client, editor)
    client.post(f"/issues/{issue['id']}/send", headers=editor)
    with session_scope(ctx.sessions) as session:
        delivery_id = session.scalars(select(Delivery.id)).one()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "bounces", "--port", str(port)],
        env=cli_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        verp = verp_address(delivery_id, settings)
        dsn = (ROOT / "tests" / "data" / "bounces" / "dsn_5_1_1.eml").read_text()
        for key, value in {
            "VERP": verp,
            "RCPT": "reader0@example.org",
            "MESSAGE_ID": f"<mp.{issue['id']}.{delivery_id}@morningpost.test>",
            "FBL": f"bounces@{settings.verp_domain}",
        }.items():
            dsn = dsn.replace(f"@@{key}@@", value)
        for _ in range(100):  # the listener needs a moment to bind
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
                    smtp.sendmail("", [verp], dsn)  # str: smtplib makes the line ends CRLF
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
        else:
            raise AssertionError(proc.stderr.read() if proc.stderr else "listener never bound")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)  # also closes the stderr pipe
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Subscriber, sub_id).status == SubscriberStatus.bounced


def test_a_worker_with_a_wrong_database_url_says_so_once_and_exits(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 9, item 10: one line, back off, exit after a while — not a traceback a poll."""
    env = {
        **cli_env(settings),
        "PYTHONPATH": str(ROOT),
        "MORNINGPOST_DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/none",
        "MORNINGPOST_POLL_INTERVAL_SECONDS": "0.05",
        "MORNINGPOST_WORKER_GIVE_UP_SECONDS": "4",
    }
    done = subprocess.run(
        [sys.executable, "-m", "app", "worker"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        check=False,
    )
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if "does not answer" in line]
    assert 1 <= len(warnings) <= 3, err
    assert err.strip().splitlines()[-1].startswith("error: worker stopped: the database did not")
