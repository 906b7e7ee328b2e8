"""Every relay failure is visible (issue 10, item 3) and a relay that refuses everyone alike
suppresses nobody (issue 9, item 3).

A relay that cannot be used (refused, no STARTTLS, silent) puts a sentence in the send's
stats `alerts`, logs a WARNING with the reason, and pauses the send with `pause_reason`
instead of retrying in silence.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.config import Settings
from app.context import Context, build_context
from app.db import session_scope
from app.models import Subscriber, Suppression, utcnow
from tests.delivery_support import unsent
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer, free_port


@pytest.fixture
def silent_relay() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (no SMTP greeting)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock.getsockname()[1]
    sock.close()


def _send_and_run(ctx: Context, client: TestClient, editor: dict[str, str]) -> dict:
    add_subscribers(ctx, 5)
    issue = new_issue(client, editor)
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202
    run_worker(ctx)
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    return dict(stats)


@pytest.mark.parametrize(
    ("relay", "sentence"),
    [
        ("refused", "refused the connection"),
        ("no-starttls", "does not offer STARTTLS"),
        ("silent", "did not answer within"),
    ],
)
def test_an_unusable_relay_alerts_logs_and_pauses(
    relay: str,
    sentence: str,
    settings: Settings,
    ctx: Context,
    client: TestClient,
    editor: dict[str, str],
    smtp_server: SMTPTestServer,
    silent_relay: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = {
        "refused": f"smtp+plain://127.0.0.1:{free_port()}",
        "no-starttls": f"smtp://127.0.0.1:{smtp_server.port}",
        "silent": f"smtp+plain://127.0.0.1:{silent_relay}",
    }[relay]
    broken = build_context(
        settings.model_copy(update={"smtp_url": url, "smtp_timeout_seconds": 0.5}),
        engine=ctx.engine,
    )
    with caplog.at_level(logging.WARNING, logger="morningpost"):
        stats = _send_and_run(broken, client, editor)
    assert stats["status"] == "paused", stats
    assert sentence in (stats["pause_reason"] or ""), stats
    assert any(sentence in a for a in stats["alerts"]), stats
    assert stats["sent"] == 0 and stats["failed"] == 0 and stats["unknown"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(sentence in w for w in warnings), warnings
    assert not any(" sent" in w and "0 sent" not in w for w in warnings if "outbox" in w)
    assert smtp_server.handler.received == []

    # Fixed relay, editor resumes: everyone gets it once and the alert is gone.
    assert client.post(f"/issues/{stats_id(client, editor)}/resume", headers=editor).json()
    run_worker(ctx)
    after = client.get(f"/issues/{stats_id(client, editor)}/stats", headers=editor).json()
    assert after["status"] == "sent" and after["sent"] == 5 and after["alerts"] == []


def stats_id(client: TestClient, editor: dict[str, str]) -> int:
    """Return the id of the one issue in these tests."""
    (issue,) = client.get("/issues", headers=editor).json()
    return int(issue["id"])


def test_a_relay_refusing_everyone_alike_suppresses_nobody(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    domains = ["a.example", "b.example", "c.example", "d.example"]
    ids = [i for d in domains for i in add_subscribers(ctx, 25, domain=d)]
    with session_scope(ctx.sessions) as session:
        emails = list(session.scalars(select(Subscriber.email)))
    for email in emails:
        smtp_server.handler.plan(email, "550 5.1.1 <recipient> User unknown in virtual table")
    issue = new_issue(client, editor)
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202
    run_worker(ctx)

    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["status"] == "paused", stats
    assert "the relay's fault" in stats["pause_reason"]
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
        statuses = set(session.scalars(select(Subscriber.status).where(Subscriber.id.in_(ids))))
    assert statuses == {"active"}
    assert stats["failed"] == 0, stats

    # The relay is fixed (the script ran out: it answers 250 again); resume delivers to all.
    smtp_server.handler.script.clear()
    client.post(f"/issues/{issue['id']}/resume", headers=editor)
    run_worker(ctx)
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    done = stats["status"] == "sent" and stats["sent"] == len(ids)
    assert done, (stats, unsent(ctx, issue["id"]))


def test_per_reader_hard_bounces_still_suppress(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    for d in ("a.example", "b.example", "c.example"):
        add_subscribers(ctx, 20, domain=d)
    smtp_server.handler.plan("reader3@a.example", "550 5.1.1 No such user here")
    smtp_server.handler.plan("reader7@c.example", "550 5.1.10 Recipient address rejected")
    issue = new_issue(client, editor)
    client.post(f"/issues/{issue['id']}/send", headers=editor)
    run_worker(ctx)
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["status"] == "sent" and stats["failed"] == 2 and stats["sent"] == 58
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 2


def test_relay_watch_needs_a_streak() -> None:
    from app.sends.watch import RelayWatch

    watch = RelayWatch(4)
    assert [watch.note("x") for _ in range(3)] == [False] * 3
    assert watch.note(None) is False  # one success resets the streak
    assert [watch.note("x") for _ in range(4)] == [False, False, False, True]
    asyncio.run(asyncio.sleep(0))


def _gmail_reply(n: int) -> str:
    """Return Gmail's multi-line 'no such user', with its per-message id, as Gmail words it."""
    msg_id = f"{(n * 2654435761) & 0xFFFFFFFFFFFF:012x}-{n * 7919 % 99991:05d}si{n}ab.{n % 97}"
    return (
        "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
        "550-5.1.1 double-checking the recipient's email address for typos or\r\n"
        "550-5.1.1 unnecessary spaces. For more information, go to\r\n"
        f"550 5.1.1  https://support.google.com/mail/?p=NoSuchUser {msg_id} - gsmtp"
    )


@pytest.mark.parametrize(
    ("domains", "per_message_id"),
    [
        (["a.example", "b.example", "c.example", "d.example"], True),
        (["a.example", "b.example"], False),
    ],
    ids=["gmail-ids", "two-domains"],
)
def test_a_relay_burst_is_caught_early_and_undone(
    domains: list[str],
    per_message_id: bool,
    ctx: Context,
    client: TestClient,
    editor: dict[str, str],
    smtp_server: SMTPTestServer,
) -> None:
    """Issue 17 item 6: replies differing only by an id, or a list on two domains, are a burst."""
    per_domain = 600 // len(domains)
    ids = [i for d in domains for i in add_subscribers(ctx, per_domain, domain=d)]
    with session_scope(ctx.sessions) as session:
        emails = list(session.scalars(select(Subscriber.email)))
    for n, email in enumerate(emails):
        reply = _gmail_reply(n) if per_message_id else "550 5.1.1 <x> User unknown"
        smtp_server.handler.plan(email, reply)
    issue = new_issue(client, editor)
    assert client.post(f"/issues/{issue['id']}/send", headers=editor).status_code == 202
    run_worker(ctx)

    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["status"] == "paused", stats
    assert "the relay's fault" in (stats["pause_reason"] or ""), stats
    # Caught early: no more than 10 % of the readers were ever refused (and so suppressed)...
    asked = sum(smtp_server.handler.attempts.values())
    assert asked <= len(ids) // 10, asked
    # ...and the pause undid all of it.
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
        statuses = set(session.scalars(select(Subscriber.status).where(Subscriber.id.in_(ids))))
    assert statuses == {"active"}
    assert stats["failed"] == 0, stats

    smtp_server.handler.script.clear()
    client.post(f"/issues/{issue['id']}/resume", headers=editor)
    run_worker(ctx)
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    done = stats["status"] == "sent" and stats["sent"] == len(ids)
    assert done, (stats, unsent(ctx, issue["id"]))


def test_resuming_after_a_relay_burst_lifts_bounces_recorded_late(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    """A result in flight elsewhere (another worker) recorded after the pause is undone too."""
    from app.models import Delivery, DeliveryStatus
    from app.suppressions.service import bounce_detail, suppress_bounced

    ids = add_subscribers(ctx, 100, domain="one.example")  # one domain: still a burst
    smtp_server.handler.default_answer = "550 5.1.1 <x> Recipient address rejected"
    issue = new_issue(client, editor)
    client.post(f"/issues/{issue['id']}/send", headers=editor)
    run_worker(ctx)
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["status"] == "paused" and "1 domain " in stats["pause_reason"], stats

    # Another worker's straggler: failed with 5.1.1 and suppressed after the pause.
    late = ids[-1]
    with session_scope(ctx.sessions) as session:
        session.execute(
            Delivery.__table__.update()
            .where(Delivery.subscriber_id == late)
            .values(status=DeliveryStatus.failed, last_reply="550 5.1.1 <x> rejected")
        )
        suppress_bounced(session, [late], utcnow(), detail=bounce_detail(issue["id"]))
    smtp_server.handler.default_answer = None
    assert client.post(f"/issues/{issue['id']}/resume", headers=editor).status_code == 200
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    run_worker(ctx)
    stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
    assert stats["status"] == "sent" and stats["sent"] == len(ids), stats
