"""Header lines built from people's text: Subject, From, Reply-To, List-Id and the rest.

Each is written from the text itself, never by parsing it as a header: a parser decodes the
encoded words (`=?utf-8?b?…?=`) an editor typed, and the CR LF hidden in one became real
header lines (a Bcc:, or a blank line ending the headers). Run once per issue, not per reader.
"""

from __future__ import annotations

import email.policy
from email.charset import Charset
from email.header import Header
from email.utils import formataddr, parseaddr

UTF8 = Charset("utf-8")


def text_header(name: str, value: str) -> bytes:
    """Encode user text (a Subject) from the text itself, never by re-parsing it.

    A parser would decode encoded words already in the text: `=?utf-8?b?…?=` hiding CR LF
    became real header lines. Plain ASCII goes out as it is (folded); anything else,
    including a literal `=?`, is RFC 2047-encoded whole, so a reader sees exactly the text.
    """
    plain = value.isascii() and value.isprintable() and "=?" not in value
    charset = "us-ascii" if plain else "utf-8"
    folded = Header(value, charset, maxlinelen=78, header_name=name).encode(linesep="\r\n")
    return f"{name}: {folded}\r\n".encode("ascii")


def address_header(name: str, value: str) -> bytes:
    """Write `Name <address>` (From, Reply-To, List-Id) from its text, never by re-parsing it.

    Newsletter names and senders are editors' text. Parsed as a header, an encoded word in
    them (`=?utf-8?b?…?=`) was decoded, and the CR LF it hid became real header lines (a Bcc:,
    or a blank line that ends the headers). The display name is quoted when it is plain ASCII,
    and RFC 2047-encoded whole otherwise (a literal `=?` included), as Subject is.
    """
    display, address = _name_and_address(value)
    if not address or not address.isascii() or not address.isprintable() or " " in address:
        return text_header(name, value)  # not a name and an address: its text, literally
    plain = display.isascii() and display.isprintable() and "=?" not in display
    if not display:
        # A list's id always goes in angle brackets (RFC 2919); an address alone goes bare.
        return f"{name}: {f'<{address}>' if name == 'List-Id' else address}\r\n".encode("ascii")
    if plain:
        return f"{name}: {formataddr((display, address))}\r\n".encode("ascii")
    return _folded(name, [*_phrase_words(display), f"<{address}>"])


# Characters a word of a display name cannot carry as it is (RFC 5322 specials).
_SPECIALS = frozenset('()<>[]:;@\\,."')


def _phrase_words(display: str) -> list[str]:
    """Return a display name as words: plain ASCII ones as they are, the others encoded.

    Each run of words that need encoding becomes one encoded word, spaces inside: two
    encoded words side by side would have the space between them dropped by mail clients
    (RFC 2047 6.2) and kept by others (Python's parser).
    """

    def needs(word: str) -> bool:
        return (
            not (word.isascii() and word.isprintable())
            or "=?" in word
            or any(c in _SPECIALS for c in word)
        )

    words: list[str] = []
    run: list[str] = []
    for word in display.split():
        if needs(word):
            run.append(word)
            continue
        if run:
            words += _encoded(" ".join(run))
            run = []
        words.append(word)
    if run:
        words += _encoded(" ".join(run))
    return words


def _encoded(text: str) -> list[str]:
    """Return `text` as RFC 2047 encoded words (one, unless it is longer than one may be)."""
    one = UTF8.header_encode(text)
    if len(one) <= 75:
        return [one]
    return Header(text, UTF8, maxlinelen=76).encode(linesep="\n").split()


def _folded(name: str, words: list[str]) -> bytes:
    """Write a header of these words, folding between words before 78 columns."""
    lines = [f"{name}:"]
    for word in words:
        if len(lines[-1]) + 1 + len(word) > 78 and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += f" {word}"
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _name_and_address(value: str) -> tuple[str, str]:
    """Split `Name <address>` at its last `<` (a stray quote in the name cannot move it)."""
    value = value.strip()
    if value.endswith(">") and "<" in value:
        at = value.rindex("<")
        display = value[:at].strip()
        if len(display) >= 2 and display[0] == display[-1] == '"':
            display = parseaddr(f"{display} <x@x>")[0]  # a quoted name, unquoted
        return display, value[at + 1 : -1].strip()
    return "", value


def folded_header(name: str, value: str) -> bytes:
    """Fold a header of our own making (never people's text: this parses it)."""
    # The SMTP policy folds at 78 columns and RFC 2047-encodes non-ASCII exactly once.
    policy = email.policy.SMTP
    return policy.header_factory(name, value).fold(policy=policy).encode("ascii")
