"""PreparedMessage: encoded once, filled per recipient, correct even across QP soft breaks."""

from __future__ import annotations

import base64
import email
import email.policy
from email.header import decode_header, make_header

import pytest

from app.config import Settings
from app.rendering.compile import CompiledEmail, InlineImage
from app.rendering.masthead import resolve
from app.rendering.placeholders import PREFERENCES_TOKEN, UNSUBSCRIBE_TOKEN
from app.sends.compose import PreparedMessage
from app.tokens import TokenService

SETTINGS = Settings(
    secret_keys=["k"], from_address="Morning Post <news@mp.test>", base_url="https://mp.test"
)
TOKENS = TokenService(["k"], 3600)
DATE = "Mon, 01 Jan 2024 07:00:00 GMT"


def compiled(pad: int) -> CompiledEmail:
    """An email whose placeholders start `pad` characters into a line."""
    text = "x" * pad + UNSUBSCRIBE_TOKEN + " " + "é" * pad + PREFERENCES_TOKEN + "\n.dot line\n"
    html = f'<p>{"y" * pad}<a href="https://mp.test/unsubscribe/{UNSUBSCRIBE_TOKEN}">u</a></p>'
    html += f'<img src="cid:qr@mp"><a href="/p/{PREFERENCES_TOKEN}">p</a>'
    image = InlineImage(cid="qr@mp", filename="qr.png", content=b"\x89PNG\r\n" + bytes(300))
    return CompiledEmail("Grüße aus der Redaktion", "pre", html, text, (image,))


@pytest.mark.parametrize("pad", [0, 1, 40, 60, 69, 70, 71, 72, 75, 76, 77])
def test_fill_across_soft_line_breaks(pad: int) -> None:
    prepared = PreparedMessage.build(compiled(pad), SETTINGS)
    unsub, prefs = TOKENS.unsubscribe_token(12345), TOKENS.preferences_token(12345)
    data = prepared.fill(
        to="reader@example.org",
        unsubscribe_token=unsub,
        preferences_token=prefs,
        message_id="<mp.1.2@mp.test>",
        date=DATE,
    )
    assert b"MPX" not in data
    lines = data.split(b"\r\n")
    assert all(len(line) <= 998 for line in lines)
    assert b"\n" not in data.replace(b"\r\n", b"")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == "Grüße aus der Redaktion"
    assert msg["To"] == "reader@example.org"
    assert unsub in msg["List-Unsubscribe"]
    plain = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert plain.startswith("x" * pad + unsub + " " + "é" * pad + prefs)
    assert f"/unsubscribe/{unsub}" in html and f"/p/{prefs}" in html
    assert UNSUBSCRIBE_TOKEN not in plain + html and PREFERENCES_TOKEN not in plain + html


def test_a_placeholder_really_straddles_a_soft_break() -> None:
    # Guard that the case above is exercised: at column ~70 QP must break inside the token.
    prepared = PreparedMessage.build(compiled(70), SETTINGS)
    slots = [p for p in prepared.pieces if not isinstance(p, bytes)]
    assert any(start > 0 for _, start, _ in slots)


def test_confirmation_variant_has_no_list_headers() -> None:
    prepared = PreparedMessage.build(compiled(0), SETTINGS, list_headers=False)
    data = prepared.fill(
        to="a@example.org",
        unsubscribe_token=TOKENS.unsubscribe_token(1),
        preferences_token=TOKENS.preferences_token(1),
        message_id="<x@mp.test>",
        date=DATE,
    )
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["List-Unsubscribe"] is None and msg["List-Id"] is None


def test_fill_rejects_header_injection_and_wrong_token_length() -> None:
    prepared = PreparedMessage.build(compiled(0), SETTINGS)
    good = TOKENS.unsubscribe_token(1)
    with pytest.raises(ValueError):
        prepared.fill(
            to="a@example.org\r\nBcc: x@y", unsubscribe_token=good, preferences_token=good,
            message_id="<x@y>", date=DATE,
        )  # fmt: skip
    with pytest.raises(ValueError):
        prepared.fill(
            to="a@example.org", unsubscribe_token="short", preferences_token=good,
            message_id="<x@y>", date=DATE,
        )  # fmt: skip


@pytest.mark.parametrize(
    "subject",
    [
        "Weekly =?utf-8?b?" + base64.b64encode(b"\r\nBcc: x@evil.example").decode() + "?=",
        "Weekly =?utf-8?q?=0D=0AReply-To:_x@evil.example?= and =?utf-8?b?WC1Jbmo6IHk=?=",
        "Plain and simple",
    ],
)
def test_encoded_words_in_a_subject_stay_literal(subject: str) -> None:
    """Issue 9, item 4: a subject is encoded from its text, never re-parsed into headers."""
    prepared = PreparedMessage.build(CompiledEmail(subject, "pre", "<p>hi</p>", "hi", ()), SETTINGS)
    data = prepared.fill(
        to="reader@example.org",
        unsubscribe_token=TOKENS.unsubscribe_token(1),
        preferences_token=TOKENS.preferences_token(1),
        message_id="<mp.1.2@mp.test>",
        date=DATE,
    )
    head = data.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":")[0].lower() for line in head.split(b"\r\n") if line[:1] not in b" \t"]
    assert b"bcc" not in names and b"reply-to" not in names and b"x-inj" not in names
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == subject  # the reader sees exactly what the editor typed
    assert msg["Bcc"] is None and msg["Reply-To"] is None


INJECTION = "=?utf-8?b?" + base64.b64encode(b"\r\nBcc: spy@evil.example\r\n\r\nX").decode() + "?="


def newsletter_message(**fields: str | None) -> bytes:
    """Return one reader's message of a "Hello" issue from a newsletter with these fields."""
    given: dict[str, str | None] = {
        "name": "Morning News",
        "tagline": None,
        "from_address": None,
        "reply_to": None,
        "postal_address": None,
        "list_id": None,
        **fields,
    }
    head = resolve(SETTINGS, id=2, slug="weekly", is_default=False, **given)
    prepared = PreparedMessage.build(
        CompiledEmail("Hello", "pre", "<p>hi</p>", "hi", ()), SETTINGS, masthead=head
    )
    return prepared.fill(
        to="reader@example.org",
        unsubscribe_token=TOKENS.unsubscribe_token(1),
        preferences_token=TOKENS.preferences_token(1),
        message_id="<mp.1.2@mp.test>",
        date=DATE,
    )


def test_encoded_words_in_a_newsletters_name_and_senders_stay_literal() -> None:
    """A newsletter's name, From, Reply-To and List-Id are written from their text: an encoded
    word in them is shown as typed, never decoded into header lines (a Bcc:, or a blank line
    that would end the headers)."""
    data = newsletter_message(
        name=f"Weekly {INJECTION}",
        from_address=f"Weekly {INJECTION} <news@example.org>",
        reply_to=f'"Desk {INJECTION}" <desk@example.org>',
        list_id=None,  # made from the name: `Weekly =?…?= <weekly.newsletter.DOMAIN>`
    )
    headers = data.split(b"\r\n\r\n", 1)[0]
    lines = headers.split(b"\r\n")
    names = [line.split(b":")[0].lower() for line in lines if line[:1] not in b" \t"]
    assert b"bcc" not in names and b"x" not in names
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    assert msg["Bcc"] is None and msg["Subject"] == "Hello"

    def shown(name: str) -> str:
        """The header as a mail client shows it (RFC 2047 decoded, folds joined)."""
        return str(make_header(decode_header(msg[name])))

    assert shown("From") == f"Weekly {INJECTION} <news@example.org>"
    assert shown("Reply-To") == f"Desk {INJECTION} <desk@example.org>"
    assert shown("List-Id") == f"Weekly {INJECTION} <weekly.newsletter.{SETTINGS.sender.domain}>"


@pytest.mark.parametrize(
    ("list_id", "line"),
    [
        ("<news.example.org>", b"List-Id: <news.example.org>"),
        ("news.example.org", b"List-Id: <news.example.org>"),  # RFC 2919's brackets added
        ("Morning News <news.example.org>", b"List-Id: Morning News <news.example.org>"),
        ("not an id at all", b"List-Id: not an id at all"),  # kept as text, never refused
    ],
)
def test_a_newsletters_own_list_id_is_written_as_given(list_id: str, line: bytes) -> None:
    data = newsletter_message(list_id=list_id)
    assert line + b"\r\n" in data.split(b"\r\n\r\n", 1)[0] + b"\r\n"


@pytest.mark.parametrize(
    "name",
    [
        "Café Crème",
        "Wöchentliche Nachrichten über Künstliche Intelligenz und Maschinen",
        "Die KI-Morgenpost — täglich um sechs Uhr für alle Leserinnen",
        "Dr. Ünï, the Great",
    ],
)
def test_a_long_non_ascii_sender_name_reads_back_whole(name: str) -> None:
    """Encoded words end between words, never inside one: a parser that keeps the space
    between two encoded words (Python's) reads the name as typed, as mail clients do."""
    data = newsletter_message(name=name, from_address=f"{name} <news@example.org>")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["From"].addresses[0].display_name == name
    assert all(len(line) <= 78 for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[:6])
