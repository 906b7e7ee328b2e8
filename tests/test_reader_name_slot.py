"""The reader's name slot (the `{{reader}}` merge tag): filled per reader into the message
encoded once, escaped in HTML, valid quoted-printable (76 columns) whatever the name, and the
same bytes for DATA (dot-stuffed) as for the DKIM signature."""

from __future__ import annotations

import email
import email.policy
from html import escape as html_escape

import pytest

from app.config import Settings
from app.rendering.compile import CompiledEmail, merge
from app.rendering.placeholders import READER_NAME_HTML, READER_NAME_TEXT
from app.sends.compose import PreparedMessage
from app.tokens import TokenService

SETTINGS = Settings(
    secret_keys=["k"], from_address="Morning Post <news@mp.test>", base_url="https://mp.test"
)
TOKENS = TokenService(["k"], 3600)
NAMES = [
    "Wanda",
    "",
    "  Ada \t Lovelace  ",
    '<b>Bold</b> & "quoted"',
    ".Dotty.",
    "Ægir Þórsson-Ñúñez 王小明 " * 6,  # long, non-ASCII: wraps over several lines
]


def compiled(pad: int) -> CompiledEmail:
    """A message whose name slots start `pad` columns into a line."""
    line = "x" * pad + "Dear {{reader}}, welcome to {{newsletter}}.\n"
    text = merge(line, "Post", READER_NAME_TEXT)
    html = merge("<p>" + "y" * pad + "Dear {{reader}},</p>", "Post", READER_NAME_HTML)
    return CompiledEmail("Welcome", "pre", html, text, ())


def fill(prepared: PreparedMessage, name: str, wire: bool) -> bytes:
    """Fill a message for one reader called `name`."""
    fields = {
        "to": "reader@example.org",
        "unsubscribe_token": TOKENS.unsubscribe_token(1, "abcdefgh"),
        "preferences_token": TOKENS.preferences_token(1, "abcdefgh"),
        "message_id": "<mp.1.2@mp.test>",
        "date": "Mon, 01 Jan 2024 07:00:00 GMT",
        "reader_name": name,
    }
    return prepared.fill_wire(**fields) if wire else prepared.fill(**fields)


@pytest.mark.parametrize("pad", [0, 50, 66, 70, 75])
@pytest.mark.parametrize("name", NAMES)
def test_the_name_is_filled_escaped_and_stays_valid_quoted_printable(pad: int, name: str) -> None:
    prepared = PreparedMessage.build(compiled(pad), SETTINGS)
    data = fill(prepared, name, wire=False)
    assert b"MPX" not in data
    body = data.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 76 for line in body.split(b"\r\n")), "QP lines are 76 columns"
    msg = email.message_from_bytes(data, policy=email.policy.default)
    plain = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    shown = " ".join(name.split())[:100] or "reader"
    assert plain.rstrip() == "x" * pad + f"Dear {shown}, welcome to Post."
    escaped = html_escape(shown, quote=True)
    assert html.rstrip() == "<p>" + "y" * pad + f"Dear {escaped},</p>"
    # DATA's bytes are the signed bytes, dot-stuffed: unstuffing gives them back exactly.
    wire = fill(prepared, name, wire=True)
    assert wire.endswith(b"\r\n.\r\n")
    assert wire[: -len(b".\r\n")].replace(b"\r\n..", b"\r\n.") == data + (
        b"" if data.endswith(b"\r\n") else b"\r\n"
    )


def test_a_message_without_the_tag_is_unchanged_by_a_name() -> None:
    plain = CompiledEmail("S", "p", "<p>Hello</p>", "Hello\n", ())
    prepared = PreparedMessage.build(plain, SETTINGS)
    assert fill(prepared, "Wanda", wire=False) == fill(prepared, "", wire=False)
