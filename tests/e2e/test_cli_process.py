"""The `morningpost` command as a real process: start-up imports of --help, exit codes, and the
long-running bounce listener and worker.

The other commands run in-process (tests/integration/test_cli*.py): a fresh interpreter spends
seconds importing the application, and what they check does not depend on it.
"""

from __future__ import annotations

import shutil
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.models import Delivery, Subscriber, SubscriberStatus
from app.sends.verp import verp_address
from tests.cli_support import morningpost
from tests.helpers import ROOT, add_subscribers, cli_env, new_issue
from tests.smtp_server import free_port

DATA = Path(__file__).resolve().parents[1] / "data"
# (Not pydantic: typer itself uses it to build sub-command groups.)
HEAVY = ("sqlalchemy", "fastapi", "premailer", "mjml", "aiosmtplib", "uvicorn")


def _imported(stderr: str) -> set[str]:
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.mark.parametrize("args", [["--help"], ["issues", "--help"], ["issues", "send", "--help"]])
def test_help_imports_none_of_the_application(settings: Settings, args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "app", *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "Usage" in result.stdout
    heavy = {n for n in _imported(result.stderr) if n.split(".")[0] in HEAVY}

    # The app.cli package's modules and app.cli_editor (the `editor` sub-app) import only typer
    # and rich at the top.
    def light(name: str) -> bool:
        return name in ("app.cli", "app.cli_editor") or name.startswith("app.cli.")

    heavy |= {n for n in _imported(result.stderr) if n.startswith("app.") and not light(n)}
    assert not heavy, f"--help imports {sorted(heavy)[:8]}"


def test_bad_configuration_is_one_clear_line(settings: Settings) -> None:
    result = morningpost(settings, "migrate", MORNINGPOST_SMTP_URL="gopher://relay")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "MORNINGPOST_SMTP_URL" in lines[0]


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
        dsn = (
            Path(__file__).resolve().parents[1] / "data" / "bounces" / "dsn_5_1_1.eml"
        ).read_text()
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


def test_the_installed_entry_point_answers_and_a_typo_is_exit_2(settings: Settings) -> None:
    """The `morningpost` console script (pyproject's [project.scripts]) as a user runs it."""
    exe = shutil.which("morningpost")
    if exe is None:
        pytest.skip("the package is not installed (no `morningpost` on PATH)")
    env = {**cli_env(settings), "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([exe, "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "Usage" in ok.stdout and "dispatch" in ok.stdout
    typo = subprocess.run([exe, "dispach"], env=env, capture_output=True, text=True, timeout=60)
    assert typo.returncode == 2 and "No such command" in typo.stderr
