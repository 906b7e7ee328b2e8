"""Pre-send check: size, preheader, links, sender and DKIM alignment, unsubscribe link."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.context import Context
from app.issues.check import block_links, check_issue, link_problem
from app.issues.dispatch import dispatch
from app.sends.dkim import generate_key
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer

GOOD_HTML = '<p><a href="http://testserver/unsubscribe/MPXUNSUB">Unsubscribe</a></p>'
BLOCKS: list[dict[str, Any]] = [
    {"type": "lead", "title": "Hi", "body": "See [this](https://example.org/a)."},
    {"type": "links", "title": "L", "items": [{"title": "A", "url": "https://example.org/b"}]},
]


def issue(blocks: list[dict[str, Any]] | None = None, preheader: str = "Today") -> Any:
    """Return an issue-shaped object."""
    return SimpleNamespace(subject="S", preheader=preheader, blocks=blocks or BLOCKS)


def codes(findings: list[Any]) -> list[tuple[str, str]]:
    """Return (level, code) pairs."""
    return [(f.level, f.code) for f in findings]


@pytest.fixture
def signed(settings: Settings, tmp_path: Path) -> Settings:
    """Return settings with DKIM aligned to the From domain."""
    key = tmp_path / "k.pem"
    generate_key(key, "mp", "morningpost.test")
    return settings.model_copy(
        update={
            "dkim_selector": "mp",
            "dkim_domain": "morningpost.test",
            "dkim_private_key_path": key,
            "postal_address": "1 Fleet Street, London",
        }
    )


def test_a_clean_issue_has_no_findings(signed: Settings) -> None:
    assert check_issue(signed, 40_000, issue(), GOOD_HTML) == []


def test_without_dkim_a_warning(settings: Settings) -> None:
    settings = settings.model_copy(update={"postal_address": "1 Fleet Street, London"})
    assert codes(check_issue(settings, 40_000, issue(), GOOD_HTML)) == [("warning", "dkim_off")]


def test_size_limits(signed: Settings) -> None:
    assert codes(check_issue(signed, 95 * 1024, issue(), GOOD_HTML)) == [("warning", "html_large")]
    found = check_issue(signed, 110 * 1024, issue(), GOOD_HTML)
    assert codes(found) == [("error", "html_too_large")]
    assert "Gmail" in found[0].message and "110 KB" in found[0].message


def test_missing_preheader_and_unsubscribe_link(signed: Settings) -> None:
    found = check_issue(signed, 1000, issue(preheader="  "), "<a href='https://x.org/'>x</a>")
    assert codes(found) == [("error", "no_unsubscribe_link"), ("warning", "no_preheader")]


def test_links_in_urls_and_markdown_bodies(signed: Settings) -> None:
    blocks: list[dict[str, Any]] = [
        {
            "type": "markdown",
            "body": "[a](http://example.org/plain) [b](/relative) <https://ok.org>",
        },
        {
            "type": "cards",
            "title": "C",
            "items": [
                {"title": "x", "description": "[c](https://bad_host!/x)", "url": "https://"},
                {"title": "y", "description": "d", "url": "mailto:news@morningpost.test"},
            ],
        },
    ]
    assert block_links(blocks) == [
        "http://example.org/plain",
        "/relative",
        "https://ok.org",
        "https://bad_host!/x",
        "https://",
        "mailto:news@morningpost.test",
    ]
    found = check_issue(signed, 1000, issue(blocks), GOOD_HTML)
    assert codes(found) == [("error", "malformed_link")] * 3 + [("warning", "insecure_link")]
    assert "relative links go nowhere" in found[0].message


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.org/a?b=c#d", True),
        ("https://sub.example.co.uk:8443/x", True),
        ("mailto:a@example.org", True),
        ("https://example.org:99999/", False),
        ("https://localhost/", False),
        ("ftp://example.org/", False),
        ("mailto:nobody", False),
        ("https://[::1/", False),
    ],
)
def test_link_problem(url: str, ok: bool) -> None:
    assert (link_problem(url) is None) == ok


def test_sender_findings(signed: Settings) -> None:
    fake = signed.model_copy(update={"from_address": ""})
    found = check_issue(fake, 1000, issue(), GOOD_HTML)
    # The fake From is morningpost.example, which the DKIM domain does not cover.
    assert codes(found) == [("error", "dkim_misaligned"), ("warning", "default_from")]
    assert "DMARC" in found[0].message


def test_a_scheduled_issue_edited_into_failing_the_check_is_not_sent_by_dispatch(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    """Issue 9, item 9: the pre-send check runs again at the moment a scheduled issue starts."""
    add_subscribers(ctx, 2)
    issue = new_issue(client, editor)
    r = client.post(
        f"/issues/{issue['id']}/send", json={"send_at": "2099-01-01T06:00:00Z"}, headers=editor
    )
    assert r.json()["status"] == "scheduled"
    broken = [{"type": "markdown", "body": "Read [this](/relative-goes-nowhere)."}]
    assert (
        client.patch(f"/issues/{issue['id']}", json={"blocks": broken}, headers=editor).status_code
        == 200
    )
    assert dispatch(ctx, datetime(2099, 1, 1, 7, tzinfo=UTC)) == []
    run_worker(ctx)
    got = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert got["status"] == "draft" and got["recipients"] == 0
    assert "pre-send check failed" in got["pause_reason"], got
    assert smtp_server.handler.received == []
