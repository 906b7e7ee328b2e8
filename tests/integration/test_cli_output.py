"""The command line as a newcomer meets it: fast help, results on stdout, no log noise,
a demo that stays away from the real list, and `issues create|list|send`."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.models import Issue, Subscriber
from tests.cli_support import run_cli
from tests.helpers import add_subscribers, new_issue
from tests.smtp_server import SMTPTestServer

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_MD = ROOT / "examples" / "ai-morning-post.md"
SAMPLE_JSON = ROOT / "examples" / "ai-morning-post.json"


def test_help_lists_the_newcomer_commands(settings: Settings) -> None:
    text = run_cli(settings, "--help").stdout
    for word in ("demo", "issues", "serve", "dispatch", "--verbose", "Getting started"):
        assert word in text


def test_editor_token_create_prints_only_the_token(settings: Settings) -> None:
    result = run_cli(settings, "editor-token", "create", "night desk")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("mp_")
    assert result.stderr == ""  # migrations ran, and said nothing


def test_verbose_shows_the_info_lines(settings: Settings) -> None:
    result = run_cli(settings, "--verbose", "editor-token", "create", "night desk")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("mp_") and result.stdout.count("\n") == 1
    assert "INFO" in result.stderr


def test_dispatch_wait_shows_progress_not_log_lines(
    settings: Settings,
    ctx: Context,
    client: TestClient,
    editor: dict[str, str],
    smtp_server: SMTPTestServer,
) -> None:
    add_subscribers(ctx, 120)
    issue = new_issue(client, editor)
    when = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    client.post(f"/issues/{issue['id']}/send", json={"send_at": when}, headers=editor)
    subprocess.run(["sleep", "1.1"], check=True)
    result = run_cli(settings, "dispatch", "--wait", MORNINGPOST_BATCH_SIZE="10")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"started 1 issue(s): {issue['id']}\n"
    assert "INFO" not in result.stderr and "batch" not in result.stderr
    assert "120/120" in result.stderr  # the progress bar, drawn on stderr
    assert len(smtp_server.handler.received) == 120


def test_demo_never_touches_the_real_list(
    settings: Settings, ctx: Context, smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 3)  # real readers, on a real relay (the test SMTP server)
    for _ in range(2):
        result = run_cli(settings, "demo")
        assert result.returncode == 0, result.stderr
        assert "sent to 3 demo readers" in result.stdout
    assert smtp_server.handler.received == []  # no real reader got mail
    with session_scope(ctx.sessions) as session:
        emails = set(session.scalars(select(Subscriber.email)))
        assert emails == {f"reader{i}@example.org" for i in range(3)}  # no fake readers left
        assert session.scalar(select(func.count()).select_from(Issue)) == 0
    demo_dir = settings.var_dir / "demo"
    assert (demo_dir / "demo.db").exists()
    assert len(list((demo_dir / "outbox").glob("*.eml"))) == 6
    assert not (settings.var_dir / "outbox").exists()


def test_issues_create_from_markdown_and_json(
    settings: Settings, client: TestClient, editor: dict[str, str], tmp_path: Path
) -> None:
    result = run_cli(settings, "issues", "create", str(SAMPLE_MD))
    assert result.returncode == 0, result.stderr
    md_id = int(result.stdout)
    data = json.loads(SAMPLE_JSON.read_text())
    as_json = tmp_path / "issue.json"
    as_json.write_text(json.dumps({**data, "slug": "from-json"}))
    result = run_cli(settings, "issues", "create", str(as_json))
    assert result.returncode == 0, result.stderr
    json_id = int(result.stdout)
    from_md = client.get(f"/issues/{md_id}", headers=editor).json()
    from_json = client.get(f"/issues/{json_id}", headers=editor).json()
    assert from_md["blocks"] == from_json["blocks"]
    assert from_md["slug"] == data["slug"]


def test_issues_create_names_the_line_of_a_mistake(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("---\nsubject: S\n---\n## Tools {cards}\n- [A](https://a.org)\n")
    result = run_cli(settings, "issues", "create", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"error: {bad}: line 5: cards item: description is required"
    other = tmp_path / "issue.txt"
    other.write_text("x")
    assert run_cli(settings, "issues", "create", str(other)).returncode == 2


def test_issues_list(settings: Settings, client: TestClient, editor: dict[str, str]) -> None:
    first = new_issue(client, editor, subject="Monday")
    second = new_issue(client, editor, subject="Tuesday")
    result = run_cli(settings, "issues", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["ID", "STATUS"]
    assert lines[1].split()[0] == str(second["id"]) and lines[1].endswith("Tuesday")
    assert lines[2].split()[0] == str(first["id"]) and "draft" in lines[2]
    rows = json.loads(run_cli(settings, "issues", "list", "--json").stdout)
    assert [r["id"] for r in rows] == [second["id"], first["id"]]
    assert run_cli(settings, "issues", "list", "--status", "sent").stdout == ""


def test_issues_send_now_at_a_time_and_local_time(
    settings: Settings,
    ctx: Context,
    client: TestClient,
    editor: dict[str, str],
    smtp_server: SMTPTestServer,
) -> None:
    add_subscribers(ctx, 4)
    later = new_issue(client, editor)
    result = run_cli(settings, "issues", "send", str(later["id"]), "--at", "2099-12-01T06:00")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"issue {later['id']} scheduled for 2099-12-01 06:00 UTC\n"
    got = client.get(f"/issues/{later['id']}", headers=editor).json()
    assert got["status"] == "scheduled" and got["send_at"].startswith("2099-12-01T06:00")

    local = new_issue(client, editor)
    args = ("issues", "send", str(local["id"]), "--local-time", "06:00", "--date", "2099-12-01")
    result = run_cli(settings, *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"issue {local['id']} goes to 4 readers at 06:00 their time on 2099-12-01"
    )
    got = client.get(f"/issues/{local['id']}", headers=editor).json()
    assert got["status"] == "scheduled" and got["send_at"].startswith("2099-12-01T06:00")
    both = run_cli(settings, "issues", "send", "1", "--at", "2099-01-01", "--date", "2026-12-01")
    assert both.returncode == 2
    assert run_cli(settings, "issues", "send", "1", "--at", "tomorrow").returncode == 2

    now = new_issue(client, editor)
    result = run_cli(settings, "issues", "send", str(now["id"]), "--wait")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"issue {now['id']} sending to 4 readers",
        f"issue {now['id']}: sent · sent 4 · failed 0 · unknown 0",
    ]
    assert len(smtp_server.handler.received) == 4
    again = run_cli(settings, "issues", "send", str(now["id"]))
    assert again.returncode == 1 and "never sent twice" in again.stderr
