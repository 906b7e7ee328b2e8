"""A relay URL without a port: people are shown the port the mailer really connects to.

aiosmtplib picks 587 for smtp:// (STARTTLS), 465 for smtps:// and 25 for smtp+plain://. The
relay table (GET /relays, the console, `morningpost status`) and every alert sentence name
that same port, or an operator checks the wrong one.
"""

from __future__ import annotations

import pytest

from app.relay_config import parse_relays
from app.sends.smtp.pool import SMTPMailer


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("smtp://user:secret@relay.example.org", 587),
        ("smtps://user:secret@relay.example.org", 465),
        ("smtp+plain://relay.example.org", 25),
        ("smtp://user:secret@relay.example.org:2525", 2525),
    ],
)
def test_the_relay_is_shown_with_the_port_it_connects_to(url: str, port: int) -> None:
    (spec,) = parse_relays(url)
    mailer = SMTPMailer(spec.url, timeout=5)
    assert mailer.new_client().port == port  # where aiosmtplib connects
    assert spec.where == f"relay.example.org:{port}"
    alert = mailer.problem(ConnectionRefusedError(111, "Connection refused"))
    assert f"relay.example.org:{port} refused the connection" in alert, alert
    assert "secret" not in spec.where + alert
