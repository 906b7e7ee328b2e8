"""The `morningpost` command for tests: in-process (typer's CliRunner) or as a real subprocess.

Most CLI tests check what a command prints and does to the database; they run it in-process,
which skips the seconds a fresh interpreter spends importing the application. A few tests in
tests/e2e/ keep the real subprocess (the entry point, exit codes, start-up imports, signals).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from typer.testing import CliRunner

from tests.helpers import cli_env


@dataclass
class CliResult:
    """What a run of the command left: its exit code and both streams (as subprocess.run)."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(
    settings: Any, *args: str, input: str | None = None, cwd: Path | None = None, **env: str
) -> CliResult:
    """Run `morningpost ARGS` in this process with the test's configuration (plus `env`).

    `input` is its standard input; `cwd` its working folder for the run (e.g. one with no .env).
    """
    import app.context
    from app.cli import cli

    wanted = {k: v for k, v in {**cli_env(settings), **env}.items() if k.startswith("MORNINGPOST_")}
    # Unset every other MORNINGPOST_ variable for the run, as the subprocess's clean env did.
    run_env: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith("MORNINGPOST_") and k not in wanted
    }
    run_env.update(wanted)
    root = logging.getLogger()
    # The command reconfigures logging (basicConfig(force=True)) onto the runner's streams;
    # put pytest's handlers back afterwards so later tests log where pytest expects.
    handlers, level = root.handlers[:], root.level
    here = Path.cwd()
    # A command that stops with an error leaves its engine to the process exit; in-process,
    # dispose of every engine the run made (else a pooled connection is garbage-collected
    # open later, during some other test).
    engines: list[Any] = []
    make_engine = app.context.make_engine

    def tracked(*a: Any, **kw: Any) -> Any:
        engine = make_engine(*a, **kw)
        engines.append(engine)
        return engine

    try:
        if cwd is not None:
            os.chdir(cwd)
        with mock.patch.object(app.context, "make_engine", tracked):
            result = CliRunner().invoke(
                cli, list(args), input=input, env=run_env, prog_name="morningpost"
            )
    finally:
        os.chdir(here)
        for engine in engines:
            engine.dispose()
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # An uncaught exception: the interpreter would print its traceback and exit 1.
        exc = result.exception
        stderr += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return CliResult(result.exit_code, result.stdout, stderr)


def morningpost(settings: Any, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m app ARGS` as a real subprocess with the test's configuration."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env={**cli_env(settings), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
