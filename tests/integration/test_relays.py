"""Several relays (issue 21, part 1): weights, rate and daily quota, rests, failover, pause, resume.

Every test talks to real SMTP servers (tests/smtp_server.py) and counts copies on their side:
one copy per reader across all of them, never more than a relay's daily quota.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import ConfigError, Settings, load_settings
from app.context import Context, build_context
from app.db import session_scope
from app.editors import create_editor_token
from app.main import create_app
from app.models import Issue, OutboxKind, OutboxMessage, RelayUsage, utcnow
from app.sends.smtp.mailer import make_mailer
from app.sends.store import relays as store_relays
from app.sends.store.relays import relay_lines
from app.sends.worker import Worker
from tests.cli_support import run_cli
from tests.delivery_support import add_issue, add_subscribers, deliveries, send_now, stats
from tests.smtp_server import ScriptedHandler, SMTPTestServer


class DyingHandler(ScriptedHandler):
    """A relay that goes away after `after` messages: new connections are refused, and the
    envelopes already on open connections are turned away with 421 before any content."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.controller: Controller | None = None
        self.times: list[float] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if len(self.received) >= self.after:
            assert self.controller is not None
            self.controller.server.close()  # stop listening: the next connect is refused
            return "421 4.3.2 going away"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        self.times.append(time.monotonic())
        return answer


@pytest.fixture
def relays() -> Iterator[list[SMTPTestServer]]:
    """Three real SMTP servers; the second one dies after 10 messages."""
    servers = [SMTPTestServer() for _ in range(3)]
    dying = DyingHandler(after=10)
    servers[1].handler = dying
    servers[1].controller.loop.close()  # the controller made for the plain handler, unused
    servers[1].controller = Controller(dying, hostname="127.0.0.1", port=servers[1].port)
    dying.controller = servers[1].controller
    for s in servers:
        s.start()
    yield servers
    for s in servers:
        s.stop()


def _with(ctx: Context, smtp_url: str, **more: object) -> Context:
    settings = ctx.settings.model_copy(
        update={"smtp_url": smtp_url, "relay_rest_seconds": 0.3, **more}
    )
    return build_context(Settings.model_validate(settings.model_dump()), engine=ctx.engine)


def _deliver(ctx: Context) -> None:
    asyncio.run(Worker(ctx, make_mailer(ctx.settings, ctx.engine)).run_until_idle())


def _copies(servers: list[SMTPTestServer]) -> list[Counter[str]]:
    return [Counter(r.rcpt_tos[0] for r in s.handler.received) for s in servers]


def _issue(ctx: Context, issue_id: int) -> Issue:
    with session_scope(ctx.sessions) as session:
        issue = session.get_one(Issue, issue_id)
        session.expunge(issue)
        return issue


def test_three_relays_keep_their_quotas_fail_over_pause_and_resume(
    ctx: Context, relays: list[SMTPTestServer]
) -> None:
    a, b, c = relays
    url = (
        f"{a.url}?name=alpha&rate=200&daily=30,"
        f"{b.url}?name=bravo&rate=200&daily=60,"
        f"{c.url}?name=charlie&daily=30"
    )
    rctx = _with(ctx, url, relay_rest_seconds=3.0)
    emails = [f"r{i}@example.org" for i in range(100)]
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)

    _deliver(rctx)

    per_relay = _copies(relays)
    union = sum(per_relay, Counter())
    assert all(n == 1 for n in union.values()), "no reader gets two copies"
    assert len(per_relay[0]) == 30 and len(per_relay[2]) == 30, "quota used up, not passed"
    assert 10 <= len(per_relay[1]) <= 14, "bravo died after about 10"
    issue = _issue(ctx, issue_id)
    assert issue.status == "paused"
    reason = issue.pause_reason or ""
    assert reason.startswith("paused: no relay can send now"), reason
    assert "alpha: daily quota of 30 used" in reason, reason
    assert "charlie: daily quota of 30 used" in reason, reason
    assert "bravo: " in reason and "going away" in reason, reason
    counts = stats(ctx, issue_id)
    assert counts["sent"] == sum(union.values())
    assert counts["unknown"] == 0 and counts["failed"] == 0
    with session_scope(ctx.sessions) as session:
        usage = {r: n for r, n in session.execute(select(RelayUsage.relay, RelayUsage.count))}
    assert usage["alpha"] == 30 and usage["charlie"] == 30
    assert usage["bravo"] >= len(per_relay[1])  # blocks given back: what was handed over

    # bravo comes back on the same port: once its rest ends the send resumes by itself.
    first = [Counter(r.rcpt_tos[0] for r in s.handler.received) for s in relays]
    b.controller.stop()
    b.handler = ScriptedHandler()
    b.controller = Controller(b.handler, hostname="127.0.0.1", port=b.port)
    b.controller.start()
    deadline = time.monotonic() + 60
    while _issue(ctx, issue_id).status != "sent" and time.monotonic() < deadline:
        _deliver(rctx)
        time.sleep(0.1)
    assert _issue(ctx, issue_id).status == "sent"
    again = Counter(r.rcpt_tos[0] for r in b.handler.received)
    everyone = sum(first, Counter()) + again
    assert everyone == Counter(emails), "every reader exactly one copy, across the relays"
    assert len(first[1]) + len(again) <= 60


@pytest.fixture
def three() -> Iterator[list[SMTPTestServer]]:
    """Three plain real SMTP servers."""
    servers = [SMTPTestServer().start() for _ in range(3)]
    yield servers
    for s in servers:
        s.stop()


def test_traffic_spreads_by_weight(ctx: Context, three: list[SMTPTestServer]) -> None:
    a, b, c = three
    url = f"{a.url}?name=a&weight=1,{b.url}?name=b&weight=2,{c.url}?name=c&weight=3"
    emails = [f"w{i}@example.org" for i in range(120)]
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    _deliver(_with(ctx, url))
    copies = _copies(three)
    assert sum(copies, Counter()) == Counter(emails)
    shares = [sum(c.values()) for c in copies]
    for got, want in zip(shares, (20, 40, 60), strict=True):
        assert abs(got - want) <= 6, shares


@pytest.mark.parametrize(
    "reply",
    [
        "421 4.7.0 Too many messages, slow down",
        # Amazon SES over SMTP, past its sending rate: no enhanced status code at all.
        "454 Throttling failure: Maximum sending rate exceeded.",
    ],
)
def test_a_throttling_relay_rests_and_the_others_carry_the_send(
    ctx: Context, three: list[SMTPTestServer], reply: str
) -> None:
    a, b, _ = three
    a.handler.default_answer = reply
    url = f"{a.url}?name=a,{b.url}?name=b"
    rctx = _with(ctx, url, relay_rest_seconds=60)
    emails = [f"t{i}@example.org" for i in range(40)]
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    _deliver(rctx)
    assert a.handler.received == []
    # Refused after its content: those rows retried (a counted attempt) and went to b.
    assert Counter(r.rcpt_tos[0] for r in b.handler.received) == Counter(emails)
    assert 1 <= sum(a.handler.attempts.values()) <= 4, "a rested after the first refusals"
    assert _issue(ctx, issue_id).status == "sent"
    with session_scope(ctx.sessions) as session:
        lines = relay_lines(session.connection(), rctx.settings.relays, utcnow().date(), utcnow())
    by_name = {line.name: line for line in lines}
    assert by_name["a"].state == "resting"
    assert reply in (by_name["a"].last_error or "")
    assert by_name["b"].state == "ready" and by_name["b"].sent_today == 40


def test_a_relay_that_answers_421_and_hangs_up_rests_and_the_others_carry_the_send(
    ctx: Context, three: list[SMTPTestServer]
) -> None:
    """421 means "closing the channel" (RFC 5321 3.8): a real relay hangs up right after it.

    Pipelined, the 421 to MAIL arrives together with the end of the connection; it must
    still be read as the relay's throttle: the relay rests and the message goes to another
    relay at once (nothing of it left), not back to the queue as a counted attempt.
    """
    a, b, _ = three

    async def closing(
        server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await server.push("421 4.7.0 Too many messages, closing connection")
        server.transport.close()
        return "421 4.7.0 closing"  # never reaches the client: the socket is closed

    a.handler.handle_MAIL = closing  # type: ignore[attr-defined]
    rctx = _with(ctx, f"{a.url}?name=a,{b.url}?name=b", relay_rest_seconds=60)
    emails = [f"h{i}@example.org" for i in range(30)]
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    _deliver(rctx)
    assert a.handler.received == []
    assert Counter(r.rcpt_tos[0] for r in b.handler.received) == Counter(emails)
    assert _issue(ctx, issue_id).status == "sent"
    assert {e: d.attempts for e, d in deliveries(ctx, issue_id).items()} == dict.fromkeys(
        emails, 1
    ), "failed over at once: no attempt counted, no retry waiting"
    with session_scope(ctx.sessions) as session:
        lines = relay_lines(session.connection(), rctx.settings.relays, utcnow().date(), utcnow())
    by_name = {line.name: line for line in lines}
    assert by_name["a"].state == "resting"
    assert "421 4.7.0" in (by_name["a"].last_error or "")


def test_a_confirmation_waits_uncounted_while_no_relay_can_send_and_goes_once_one_can(
    ctx: Context, three: list[SMTPTestServer]
) -> None:
    """The outbox (confirmations, welcome mail, test copies) keeps the ledger's promise too.

    A message no relay could take never left: it must not count as an attempt, or a day over
    quota would use up its attempts and fail a reader's confirmation for good.
    """
    a = three[0]
    (sub_id,) = add_subscribers(ctx, ["new@example.org"], status="pending")
    with session_scope(ctx.sessions) as session:
        session.add(
            OutboxMessage(
                kind=OutboxKind.confirm, to_address="new@example.org", subscriber_id=sub_id
            )
        )
        store_relays.reserve_daily(session.connection(), "a", utcnow().date(), 2, 2)
    rctx = _with(ctx, f"{a.url}?name=a&daily=2", max_attempts=2, retry_backoff_seconds=0)

    def row() -> OutboxMessage:
        with session_scope(ctx.sessions) as session:
            (message,) = session.scalars(select(OutboxMessage))
            session.expunge(message)
            return message

    for _ in range(4):  # more tries than MAX_ATTEMPTS, the quota used up all along
        _deliver(rctx)
        time.sleep(0.35)
    waiting = row()
    assert waiting.status in ("pending", "retry") and waiting.attempts == 0, (
        waiting.status,
        waiting.attempts,
        waiting.last_reply,
    )
    assert a.handler.received == []

    with session_scope(ctx.sessions) as session:  # quota again (as when the UTC day turns)
        store_relays.give_back_daily(session.connection(), "a", utcnow().date(), 2)
    deadline = time.monotonic() + 30
    while row().status != "sent" and time.monotonic() < deadline:
        _deliver(rctx)
        time.sleep(0.1)
    sent = row()
    assert (sent.status, sent.attempts) == ("sent", 1)
    assert [r.rcpt_tos for r in a.handler.received] == [("new@example.org",)]


def test_a_quota_the_database_would_not_reserve_sends_the_message_later_not_unknown(
    ctx: Context, three: list[SMTPTestServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's own writes (quota, rate slots) come before any byte of the message.

    When one fails (the database refused, a lost connection), nothing was sent: the row goes
    back to the queue and is sent later, once. It must not be recorded `unknown`, which is
    never resent by itself, so that reader would get no copy at all.
    """
    a = three[0]
    reserve = store_relays.reserve_daily
    calls = 0

    def refusing(*args: Any, **kwargs: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the database refused")
        return reserve(*args, **kwargs)

    monkeypatch.setattr(store_relays, "reserve_daily", refusing)
    emails = [f"d{i}@example.org" for i in range(20)]
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    rctx = _with(ctx, f"{a.url}?name=a&daily=1000")
    deadline = time.monotonic() + 30
    while _issue(ctx, issue_id).status != "sent" and time.monotonic() < deadline:
        _deliver(rctx)
    assert calls >= 2
    counts = stats(ctx, issue_id)
    assert counts["unknown"] == 0 and counts["sent"] == len(emails), counts
    assert Counter(r.rcpt_tos[0] for r in a.handler.received) == Counter(emails)


def test_a_relay_keeps_its_rate(ctx: Context, three: list[SMTPTestServer]) -> None:
    a = three[0]
    stamps: list[float] = []
    answer = a.handler.handle_DATA

    async def timed(server: Any, session: Any, envelope: Any) -> str:
        stamps.append(time.monotonic())
        return await answer(server, session, envelope)

    a.handler.handle_DATA = timed  # type: ignore[method-assign]
    emails = [f"q{i}@example.org" for i in range(21)]
    add_subscribers(ctx, emails)
    issue_id = add_issue(ctx)
    send_now(ctx, issue_id)
    began = time.monotonic()
    _deliver(_with(ctx, f"{a.url}?name=a&rate=20"))
    assert Counter(r.rcpt_tos[0] for r in a.handler.received) == Counter(emails)
    # 21 messages at 20/s. The limiter's promise, which no delay can shrink: the slots are 1/20 s
    # apart from a first one no earlier than the send began, so the 21st reaches the relay at
    # least 1.0 s after that (0.95: the slots are wall-clock time, the stamps monotonic).
    assert stamps[-1] - began >= 0.95, stamps[-1] - began
    # And they are spread, not held and then sent at once: ideally 0.9 s from the 3rd to the
    # 21st (0.07 s with no rate). A message held up past its slot may catch up within the second
    # (its slot is spent at once), so a loaded machine shrinks this span: 0.83 s and 0.77 s were
    # seen in CI (12-07), hence 0.5.
    assert stamps[-1] - stamps[2] >= 0.5, stamps[-1] - stamps[2]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("smtp://a:25?rate=fast", "rate must be a positive number"),
        ("smtp://a:25?name=x,smtp://b:25?name=x", "two relays are named 'x'"),
        ("smtp://a:25?speed=3", "unknown parameter 'speed'"),
        ("smtp://a:25?daily=-1", "daily must be a positive whole number"),
    ],
)
def test_a_bad_relay_list_stops_start_up_naming_the_variable(value: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(smtp_url=value)
    line = str(caught.value)
    assert line.startswith("MORNINGPOST_SMTP_URL: ") and words in line and "\n" not in line


def test_get_relays_and_the_console_page_show_state_quota_and_errors(
    ctx: Context, three: list[SMTPTestServer], tmp_path: Any
) -> None:
    a, b, _ = three
    url = f"{a.url}?name=alpha&daily=10&rate=5,{b.url}?name=bravo&weight=2"
    rctx = _with(ctx, url)
    with session_scope(ctx.sessions) as session:
        conn = session.connection()
        store_relays.reserve_daily(conn, "alpha", utcnow().date(), 4, 10)
        store_relays.note_state(
            conn,
            "bravo",
            rested_until=utcnow() + timedelta(minutes=5),
            failures=1,
            error="The relay refused the connection",
            at=utcnow(),
        )
    app = create_app(rctx.settings, context=rctx)
    with TestClient(app, base_url="http://testserver", client=("127.0.0.1", 50000)) as client:
        assert client.get("/relays").status_code == 401
        with session_scope(ctx.sessions) as session:
            token = create_editor_token(session, "relays")
        body = client.get("/relays", headers={"Authorization": f"Bearer {token}"}).json()
        by_name = {r["name"]: r for r in body["items"]}
        assert by_name["alpha"]["sent_today"] == 4 and by_name["alpha"]["daily_quota"] == 10
        assert by_name["alpha"]["rate"] == 5 and by_name["alpha"]["state"] == "ready"
        assert by_name["bravo"]["state"] == "resting" and by_name["bravo"]["weight"] == 2
        assert "refused the connection" in by_name["bravo"]["last_error"]
        assert by_name["bravo"]["rested_until"] is not None


def test_morningpost_status_prints_the_relay_table(
    ctx: Context, three: list[SMTPTestServer]
) -> None:
    a, b, _ = three
    url = f"{a.url}?name=alpha&daily=10,{b.url}?name=bravo"
    with session_scope(ctx.sessions) as session:
        conn = session.connection()
        store_relays.reserve_daily(conn, "alpha", utcnow().date(), 10, 10)
        store_relays.note_state(
            conn, "bravo", rested_until=None, failures=0, error="421 4.7.0 slow down", at=utcnow()
        )
    done = run_cli(ctx.settings, "status", MORNINGPOST_SMTP_URL=url)
    assert done.returncode == 0, done.stderr
    assert "Relays" in done.stdout and "alpha" in done.stdout and "over quota" in done.stdout
    assert "421 4.7.0 slow down" in done.stdout and "10 (100%)" in done.stdout
