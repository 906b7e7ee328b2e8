"""MORNINGPOST_LOG_FORMAT=json: one JSON object per line, with `extra` fields such as ids."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.context import Context
from app.logs import JsonFormatter
from tests.cli_support import run_cli
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer


def test_a_record_becomes_one_json_line_with_its_extra_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("morningpost.test-json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("sent %d of %s", 3, "issue", extra={"issue_id": 7, "delivery_id": 42})
        try:
            raise ValueError("line one\nline two")
        except ValueError:
            logger.exception("it broke", extra={"issue_id": 7})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "sent 3 of issue"
    assert first["level"] == "WARNING"
    assert first["logger"] == "morningpost.test-json"
    assert first["issue_id"] == 7
    assert first["delivery_id"] == 42
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR"
    assert "ValueError: line one" in second["exception"]


def test_the_cli_logs_json_lines(settings: Settings, tmp_path: Path) -> None:
    done = run_cli(
        settings,
        "--verbose",
        "dispatch",
        "--wait",
        cwd=tmp_path,
        MORNINGPOST_LOG_FORMAT="json",
        MORNINGPOST_SMTP_URL="",  # the capture mailer: announce_defaults logs a line for it
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines
    entries = [json.loads(line) for line in lines]  # every line parses
    assert any("capture mailer" in e["message"] for e in entries)
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)


def test_delivery_lines_carry_the_issue_and_delivery_ids(
    ctx: Context,
    client: TestClient,
    editor: dict[str, str],
    smtp_server: SMTPTestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_subscribers(ctx, 3)
    smtp_server.handler.plan("reader1@example.org", "550 5.1.1 No such user")
    issue = new_issue(client, editor)
    client.post(f"/issues/{issue['id']}/send", headers=editor)
    with caplog.at_level(logging.DEBUG, logger="morningpost"):
        run_worker(ctx)
    lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if hasattr(r, "delivery_id")
    ]
    assert len(lines) == 3, lines  # one line per delivery at DEBUG
    failed = [line for line in lines if line["outcome"] == "failed"]
    assert len(failed) == 1 and failed[0]["level"] == "INFO"
    assert failed[0]["issue_id"] == issue["id"] and isinstance(failed[0]["delivery_id"], int)
    assert "550 5.1.1" in failed[0]["message"]
