"""A real send with DKIM, VERP and Feedback-ID, then bounces that change what the next send does."""

from __future__ import annotations

from pathlib import Path

import dkim
import pytest
from fastapi.testclient import TestClient

from app.bounces.service import record_inbound
from app.config import Settings
from app.context import Context, build_context
from app.db import session_scope
from app.main import create_app
from app.models import Subscriber, SubscriberStatus, utcnow
from app.sends.dkim import generate_key, public_key_der, txt_value
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer

DSN = Path(__file__).resolve().parents[1] / "data" / "bounces"


@pytest.fixture
def signed(settings: Settings, tmp_path: Path) -> tuple[Context, str]:
    """Return a context that signs with a fresh key and uses VERP, and the key's TXT value."""
    key = tmp_path / "dkim.pem"
    generate_key(key, "mp", "morningpost.test")
    signing = settings.model_copy(
        update={
            "dkim_selector": "mp",
            "dkim_domain": "morningpost.test",
            "dkim_private_key_path": key,
            "bounce_domain": "bounces.morningpost.test",
        }
    )
    return build_context(signing), txt_value(public_key_der(key.read_bytes()))


def test_signed_send_verifies_and_a_hard_bounce_stops_the_next_one(
    signed: tuple[Context, str], smtp_server: SMTPTestServer, editor_token: str
) -> None:
    ctx, record = signed
    editor = {"Authorization": f"Bearer {editor_token}"}
    add_subscribers(ctx, 3)
    with TestClient(create_app(ctx.settings, context=ctx)) as client:
        issue = new_issue(client, editor)
        client.post(f"/issues/{issue['id']}/send", headers=editor)
        run_worker(ctx)
        received = smtp_server.handler.wait_for(3)

        def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
            assert name == b"mp._domainkey.morningpost.test."
            return record.encode()

        for message in received:
            assert dkim.verify(message.data, dnsfunc=dnsfunc)
            tampered = message.data.replace(b"Hello readers", b"Hello reader!", 1)
            assert not dkim.verify(tampered, dnsfunc=dnsfunc)
            assert message.mail_from.startswith("bounces+")
            assert message.mail_from.endswith("@bounces.morningpost.test")
            parsed = message.message()
            assert parsed["Feedback-ID"].startswith(f"{issue['id']}:")
            assert "List-Unsubscribe" in parsed["DKIM-Signature"]

        # reader0's mailbox does not exist: its DSN comes back to the VERP return path.
        bounced = next(m for m in received if m.rcpt_tos == ("reader0@example.org",))
        dsn = (DSN / "dsn_5_1_1.eml").read_text()
        for key, value in {
            "VERP": bounced.mail_from,
            "RCPT": "reader0@example.org",
            "MESSAGE_ID": bounced.message()["Message-ID"],
            "FBL": "bounces@bounces.morningpost.test",
        }.items():
            dsn = dsn.replace(f"@@{key}@@", value)
        with session_scope(ctx.sessions) as session:
            events = record_inbound(
                session, dsn.encode(), "smtp", ctx.settings, utcnow(), (bounced.mail_from,)
            )
            assert [e.kind for e in events] == ["hard"]
        with session_scope(ctx.sessions) as session:
            reader0 = session.query(Subscriber).filter_by(email="reader0@example.org").one()
            assert reader0.status == SubscriberStatus.bounced

        stats = client.get(f"/issues/{issue['id']}/stats", headers=editor).json()
        assert stats["bounces"]["hard"] == 1 and stats["alerts"] == []

        again = new_issue(client, editor)
        answer = client.post(f"/issues/{again['id']}/send", headers=editor).json()
        assert answer["recipients"] == 2
    ctx.close()
