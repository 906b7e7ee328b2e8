"""Commands run where nothing is set up (issue 22, item 4): one line, no var/ left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT


def _run(cwd: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MORNINGPOST_")}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["issues", "list"],
        ["status", "1"],
        ["editor-token", "list"],
        ["editor", "list"],
        ["editor", "add", "ed@example.org", "--password-stdin"],
        ["dispatch"],
    ],
)
def test_a_command_in_an_empty_folder_says_where_it_looked(tmp_path: Path, args: list[str]) -> None:
    result = _run(tmp_path, *args, stdin="a long enough password\n")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(tmp_path / "var" / "morningpost.db") in lines[0]
    assert "morningpost migrate" in lines[0]
    assert list(tmp_path.iterdir()) == []  # no database, no key, no var/


def test_an_unmigrated_database_and_a_missing_key_are_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    result = _run(tmp_path, "issues", "list", MORNINGPOST_DATABASE_URL=f"sqlite:///{empty}")
    assert result.returncode == 2 and "has no tables yet" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # Set up by `migrate` (which may create both), then a key gone missing is named too.
    assert _run(tmp_path, "migrate").returncode == 0
    (tmp_path / "var" / "secret_key").unlink()
    result = _run(tmp_path, "issues", "list")
    assert result.returncode == 2 and "no signing key" in result.stderr
    assert not (tmp_path / "var" / "secret_key").exists()
    assert _run(tmp_path, "issues", "list", MORNINGPOST_SECRET_KEYS="k" * 40).returncode == 0


def test_editor_add_names_the_sign_in_address_and_token_list_keeps_tabs(tmp_path: Path) -> None:
    assert _run(tmp_path, "migrate").returncode == 0
    added = _run(
        tmp_path,
        "editor",
        "add",
        "ed@example.org",
        "--password-stdin",
        "--port",
        "8123",
        stdin="a long enough password\n",
    )
    assert added.returncode == 0, added.stderr
    assert "sign in at http://127.0.0.1:8123/editor/" in added.stdout
    public = _run(
        tmp_path,
        "editor",
        "add",
        "pat@example.org",
        "--password-stdin",
        "--port",
        "8123",
        stdin="a long enough password\n",
        MORNINGPOST_BASE_URL="https://news.example.org",
    )
    assert "sign in at https://news.example.org/editor/" in public.stdout
    assert _run(tmp_path, "editor-token", "create", "scripts").returncode == 0
    listed = _run(tmp_path, "editor-token", "list")  # stdout is a pipe here
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.split("\t")[1:3] == ["scripts", "active"], repr(line)


def test_the_migration_log_counts_its_steps_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from app.db import make_engine
    from app.migrate import upgrade_head

    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    with caplog.at_level(logging.INFO):
        upgrade_head(engine)
    engine.dispose()
    lines = [r.getMessage() for r in caplog.records]
    steps = [line for line in lines if line.startswith("migration ")]
    total = len(steps)
    assert total >= 10
    assert [s.split(":")[0] for s in steps] == [
        f"migration {n} of {total}" for n in range(1, total + 1)
    ]
    assert steps[0].endswith("initial schema (revision 0001)")
    assert not any(line.startswith("Running upgrade") for line in lines)
