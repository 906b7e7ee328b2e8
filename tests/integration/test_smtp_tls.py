"""The mailer over TLS with a login: STARTTLS (smtp://) and implicit TLS (smtps://).

Against aiosmtpd with a self-signed certificate. aiosmtplib sets the session up (TLS, AUTH);
the pipelined Wire then takes the encrypted transport over. Both event loops the project
runs on are covered: asyncio (tests, `serve`) and uvloop (`morningpost worker`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509

from app.sends.smtp.mailer import Outcome, SendResult, SMTPMailer
from tests.certs import self_signed
from tests.smtp_server import ScriptedHandler, free_port

USER, PASSWORD = "news", "s3cret pass"
MESSAGE = b"From: news@a.test\r\nSubject: hi\r\n\r\nover TLS\r\n.leading dot\r\n"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1; return (cert.pem, key.pem)."""
    address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    return self_signed(tmp_path_factory.mktemp("tls"), "relay.test", address, "cert")


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    login = (data.login, data.password) if isinstance(data, LoginPassword) else None
    return AuthResult(success=login == (USER.encode(), PASSWORD.encode()), handled=False)


@pytest.fixture
def tls_relay(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[bool], tuple[int, ScriptedHandler]]]:
    """Start aiosmtpd requiring a login over TLS; implicit=True for smtps, else STARTTLS."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    # The client trusts our self-signed certificate the standard way (OpenSSL's variable).
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    started: list[Controller] = []

    def start(implicit: bool) -> tuple[int, ScriptedHandler]:
        handler = ScriptedHandler()
        port = free_port()
        tls: dict[str, Any] = (
            # aiosmtpd only knows TLS it negotiated itself (STARTTLS) as TLS for AUTH.
            {"ssl_context": context, "auth_require_tls": False}
            if implicit
            else {"tls_context": context, "require_starttls": True}
        )
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            auth_required=True,
            authenticator=_authenticate,
            ready_timeout=10,
            **tls,
        )
        controller.start()
        started.append(controller)
        return port, handler

    yield start
    for controller in started:
        controller.stop()


async def _send_three(url: str) -> list[SendResult]:
    mailer = SMTPMailer(url, timeout=10)
    results = []
    async with mailer.connection() as conn:  # one connection, reused
        for i in range(3):
            results.append(await conn.send("news@a.test", f"r{i}@b.test", MESSAGE))
    await mailer.aclose()
    # A refused session's socket (TLS) takes a few loop turns to close; asyncio.run would
    # end the loop first and leave it unclosed.
    await asyncio.sleep(0.1)
    return results


# aiosmtpd warns because it cannot tell that an implicit-TLS socket is encrypted.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "smtps"])
def test_sends_over_tls_with_login(
    tls_relay: Callable[[bool], tuple[int, ScriptedHandler]], implicit: bool, loop: str
) -> None:
    port, handler = tls_relay(implicit)
    scheme = "smtps" if implicit else "smtp"
    url = f"{scheme}://{USER}:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{port}"
    run = uvloop.run if loop == "uvloop" else asyncio.run
    results = run(_send_three(url))
    assert [r.outcome for r in results] == [Outcome.sent] * 3, results
    received = handler.wait_for(3)
    assert sorted(r.rcpt_tos[0] for r in received) == ["r0@b.test", "r1@b.test", "r2@b.test"]
    assert received[0].data.replace(b"\r\n", b"\n").endswith(b"over TLS\n.leading dot\n")


def test_a_wrong_password_is_a_retry_and_sends_nothing(
    tls_relay: Callable[[bool], tuple[int, ScriptedHandler]],
) -> None:
    port, handler = tls_relay(False)
    results = asyncio.run(_send_three(f"smtp://{USER}:wrong@127.0.0.1:{port}"))
    assert {r.outcome for r in results} == {Outcome.retry}, results
    assert all(r.reply.startswith("connect: 535") for r in results), results[0].reply
    # A sentence an editor can act on travels with the result (issue 10, item 3).
    assert "refused the login" in (results[0].alert or ""), results[0]
    assert "MORNINGPOST_SMTP_URL" in (results[0].alert or "")
    assert handler.received == []


def test_smtp_url_refuses_a_relay_without_starttls(smtp_server: Any) -> None:
    """smtp:// means STARTTLS is required: a plain-text relay is never sent a password."""
    url = f"smtp://{USER}:{PASSWORD}@127.0.0.1:{smtp_server.port}"
    results = asyncio.run(_send_three(url))
    assert {r.outcome for r in results} == {Outcome.retry}, results
    assert "STARTTLS" in results[0].reply or "starttls" in results[0].reply.lower()
    assert "does not offer STARTTLS" in (results[0].alert or ""), results[0]
    assert smtp_server.handler.received == []
