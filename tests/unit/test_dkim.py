"""DKIM: signatures verify with dkimpy, break on any change, oversign; keys, settings, alignment."""

from __future__ import annotations

import os
import re
from pathlib import Path

import dkim
import pytest

from app.config import ConfigError, Settings, dkim_alignment_error, load_settings
from app.sends.dkim import (
    DkimSigner,
    feedback_id,
    generate_key,
    public_key_der,
    relaxed_header,
    simple_body,
    txt_value,
)

MESSAGE = (
    b"From: The AI Morning Post <news@morningpost.test>\r\n"
    b"To: reader@example.org\r\n"
    b"Subject: The AI Morning Post \r\n\t- Monday\r\n"
    b"Date: Mon, 07 Dec 2026 06:00:00 +0000\r\n"
    b"Message-ID: <mp.1.1@morningpost.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"List-Id: The AI Morning Post <newsletter.morningpost.test>\r\n"
    b"List-Unsubscribe: <https://morningpost.test/unsubscribe/abc>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello readers.\r\n\r\nUnsubscribe: https://morningpost.test/unsubscribe/abc\r\n\r\n\r\n"
)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Generate one key for the module; return its path and the TXT record."""
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    return path, generate_key(path, "mp2026", "morningpost.test")


@pytest.fixture(scope="module")
def signer(key: tuple[Path, str]) -> DkimSigner:
    """Return a signer on the module's key."""
    return DkimSigner("mp2026", "morningpost.test", key[0].read_bytes())


def verify(message: bytes, key: tuple[Path, str]) -> bool:
    """Verify with dkimpy against the key's TXT record, served without DNS."""
    record = txt_value(public_key_der(key[0].read_bytes())).encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mp2026._domainkey.morningpost.test."
        return record

    return bool(dkim.verify(message, dnsfunc=dnsfunc))


def test_signature_verifies_and_breaks_on_any_change(
    signer: DkimSigner, key: tuple[Path, str]
) -> None:
    signed = signer.sign(MESSAGE)
    assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple;")
    assert signed.endswith(MESSAGE)
    assert verify(signed, key)
    body_at = signed.index(b"Hello")
    changed = signed[:body_at] + b"J" + signed[body_at + 1 :]
    assert not verify(changed, key)
    assert not verify(signed.replace(b"Monday", b"Tuesday"), key)
    # Relaxed header canonicalisation tolerates re-folding by relays; simple body does not.
    assert verify(signed.replace(b"Subject: The AI", b"Subject:   The AI"), key)


def test_oversigned_headers_cannot_be_added(signer: DkimSigner, key: tuple[Path, str]) -> None:
    signed = signer.sign(MESSAGE)
    tags = re.search(rb"[\s;]h=([^;]*);", signed).group(1)  # type: ignore[union-attr]
    names = [n.decode().lower() for n in tags.split(b":")]
    for name in ("from", "subject", "list-unsubscribe", "list-unsubscribe-post"):
        assert names.count(name) == 2, name
    for extra in (
        b"From: attacker@evil.example\r\n",
        b"Subject: Win a prize\r\n",
        b"List-Unsubscribe: <https://evil.example/u>\r\n",
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
    ):
        head, body = signed.split(b"\r\n\r\n", 1)
        assert not verify(head + b"\r\n" + extra + b"\r\n" + body, key), extra
    # Headers outside h= may be added (relays add Received: lines).
    assert verify(b"Received: from relay.example by mx.example\r\n" + signed, key)


def test_lf_messages_are_signed_as_they_go_on_the_wire(
    signer: DkimSigner, key: tuple[Path, str]
) -> None:
    signed = signer.sign(MESSAGE.replace(b"\r\n", b"\n"))
    assert b"\r" not in signed
    assert verify(signed.replace(b"\n", b"\r\n"), key)


def test_canonical_forms() -> None:
    assert relaxed_header(b"Subject ", b"  a \r\n\t b  ") == b"subject:a b\r\n"
    assert simple_body(b"") == b"\r\n"
    assert simple_body(b"a\n\n\n") == b"a\r\n"
    assert simple_body(b"a") == b"a\r\n"
    assert simple_body(b"a\r\n\r\nb\r\n") == b"a\r\n\r\nb\r\n"


def test_generate_key_writes_a_private_file_and_refuses_to_overwrite(
    key: tuple[Path, str], tmp_path: Path
) -> None:
    path, record = key
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert record.startswith('mp2026._domainkey.morningpost.test. IN TXT ( "v=DKIM1; k=rsa; p=')
    assert all(len(chunk) <= 255 for chunk in record.split('"')[1::2])
    with pytest.raises(FileExistsError):
        generate_key(path, "mp2026", "morningpost.test")


def test_settings_need_all_three_and_a_readable_key(key: tuple[Path, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"MORNINGPOST_DKIM_PRIVATE_KEY_PATH: .*missing"):
        load_settings(dkim_selector="mp", dkim_domain="morningpost.test")
    with pytest.raises(ConfigError, match="cannot read the key file"):
        load_settings(
            dkim_selector="mp",
            dkim_domain="morningpost.test",
            dkim_private_key_path=tmp_path / "absent.pem",
        )
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        load_settings(dkim_selector="mp", dkim_domain="x.test", dkim_private_key_path=junk)
    ok = load_settings(
        from_address="News <news@morningpost.test>",
        dkim_selector="mp",
        dkim_domain="MorningPost.test.",
        dkim_private_key_path=key[0],
    )
    assert ok.dkim_enabled and ok.dkim_domain == "morningpost.test"
    assert DkimSigner.from_settings(ok) is not None
    assert DkimSigner.from_settings(load_settings()) is None


@pytest.mark.parametrize(
    ("sender", "domain", "aligned"),
    [
        ("news@morningpost.test", "morningpost.test", True),
        ("news@mail.morningpost.test", "morningpost.test", True),
        ("news@morningpost.test", "mail.morningpost.test", False),
        ("news@notmorningpost.test", "morningpost.test", False),
    ],
)
def test_alignment(key: tuple[Path, str], sender: str, domain: str, aligned: bool) -> None:
    # Settings() directly: load_settings() refuses a misaligned pair before we could look.
    settings = Settings(
        from_address=f"Post <{sender}>",
        dkim_selector="mp",
        dkim_domain=domain,
        dkim_private_key_path=key[0],
    )
    error = dkim_alignment_error(settings)
    assert (error is None) == aligned
    if error:
        assert error.startswith("MORNINGPOST_DKIM_DOMAIN:")
    assert dkim_alignment_error(load_settings()) is None


def test_feedback_id(settings: Settings) -> None:
    assert (
        feedback_id(12, settings) == "12:newsletter.morningpost.test:morningpost:morningpost.test"
    )
