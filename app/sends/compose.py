"""Wire bytes of a message: built once per issue, filled per recipient with a few joins.

The whole MIME message is encoded once with the per-subscriber tokens as placeholders
(app.rendering.placeholders). Placeholders are letters only and exactly as long as the tokens,
so quoted-printable leaves their characters literal; it may only insert soft line breaks
("=\\r\\n") inside one. `build` records where every placeholder character landed and splits the
template into literal chunks and token slices, so `fill` is a single b"".join.

Merge tags (app.rendering.merge_tags) have stand-ins too, but a reader's value has any length:
the whole stand-in (soft breaks inside it included) becomes one slot, and the value goes in
already quoted-printable, between soft breaks ("=\\r\\n" before and after), in lines of at
most 76 characters. The lines around it only get shorter, so every line stays within the
limit, and the text after the slot starts a line (dot-stuffing knows that).
"""

from __future__ import annotations

import binascii
import re
import secrets
from base64 import encodebytes
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from typing import Any

from app.config import Settings
from app.rendering import merge_tags
from app.rendering.compile import CompiledEmail
from app.rendering.masthead import Masthead
from app.rendering.placeholders import LIST_TOKEN_LENGTH, PREFERENCES_TOKEN, UNSUBSCRIBE_TOKEN
from app.sends.dkim import DkimSigner
from app.sends.headers import address_header, folded_header, text_header
from app.sends.store.rows import Claim
from app.sends.verp import verp_address
from app.tokens import TokenService

CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
# Slot kinds: which token a slice comes from (2 and 3: the same at a line's start).
_UNSUB, _PREFS = 0, 1
_PLACEHOLDERS = ((_UNSUB, UNSUBSCRIBE_TOKEN.encode()), (_PREFS, PREFERENCES_TOKEN.encode()))
# A merge tag's value: (kind, tag number, 0), escaped for HTML or plain for the text part.
MERGE_HTML, MERGE_TEXT = 4, 5
_MERGE_KINDS = ((MERGE_HTML, merge_tags.HTML), (MERGE_TEXT, merge_tags.TEXT))

# A piece of the template: literal bytes, or (token kind, start, end) of a token.
Piece = bytes | tuple[int, int, int]
# One reader's merge values: (HTML part, text part) per tag, encoded for the wire.
MergeValues = tuple[tuple[bytes, bytes], ...]
QP_LINE = 75  # characters of a value line before its soft break ("=" makes 76)
# Bytes a value keeps as they are in quoted-printable: no "=", no ".", no line ends.
_QP_UNSAFE = re.compile(rb"[^A-Za-z0-9 ,;:!?'\-_&#()/]")
EQUALS = ord("=")


def unsubscribe_mailto(settings: Settings) -> str:
    """Return the mailto address of List-Unsubscribe: the sender's local part + "+unsubscribe".

    Mail to it must be routed by the operator (a plus-address alias of the From mailbox); the
    subject carries the unsubscribe token so whoever reads that mailbox can act on it.
    """
    sender = settings.sender
    return f"{sender.username}+unsubscribe@{sender.domain}"


def delivery_bytes(
    prepared: PreparedMessage,
    claim: Claim,
    tokens: TokenService,
    date: str,
    signer: DkimSigner | None,
) -> bytes:
    """Return one recipient's wire bytes: two tokens, an address, a date, a Message-ID, DKIM.

    The only per-recipient work of a send: the message was rendered, encoded and dot-stuffed
    once per issue; here a few fixed-length slots are filled and, with a key, it is signed.
    """
    unsubscribe, preferences = tokens.list_tokens(claim.subscriber_id, claim.token_nonce)
    fields: dict[str, Any] = {
        "to": claim.email,
        "unsubscribe_token": unsubscribe,
        "preferences_token": preferences,
        "message_id": claim.message_id,
        "date": date,
    }
    if prepared.tags:
        fields["merge"] = prepared.merge_values(claim.name, claim.reader_attributes())
    wire = prepared.fill_wire(**fields)
    if signer is None:
        return wire
    # The signature covers the message as the receiver reads it (unstuffed); the header
    # itself never starts a line with a dot, so it goes in front of the stuffed bytes.
    return signer.header(prepared.fill(**fields)) + wire


def envelope_sender(delivery_id: int, settings: Settings) -> str:
    """Return MAIL FROM for a delivery: its VERP address when a bounce domain is set."""
    if settings.bounce_domain:
        return verp_address(delivery_id, settings)
    return settings.sender.addr_spec


def outbox_message_id(outbox_id: int, domain: str) -> str:
    """Return a fresh, unguessable Message-ID for a confirmation, welcome or test email."""
    return f"<mp.outbox.{outbox_id}.{secrets.token_hex(12)}@{domain}>"


def _qp(text: str) -> bytes:
    """Quoted-printable encode a text part with CRLF line endings (C speed, once per issue)."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(normalized, istext=True).replace(b"\n", CRLF)


def _headers(
    compiled: CompiledEmail,
    settings: Settings,
    list_headers: bool,
    extra: dict[str, str],
    masthead: Masthead | None = None,
) -> list[bytes]:
    lines = [
        address_header("From", masthead.from_address if masthead else str(settings.sender)),
        text_header("Subject", compiled.subject),
        b"MIME-Version: 1.0\r\n",
        *(folded_header(name, value) for name, value in extra.items()),
    ]
    if masthead is not None and masthead.reply_to:
        lines.append(address_header("Reply-To", masthead.reply_to))
    if list_headers:
        leave = masthead.unsubscribe_query if masthead else ""
        url = f"{settings.base_url}/unsubscribe/{UNSUBSCRIBE_TOKEN}{leave}"
        mailto = f"mailto:{unsubscribe_mailto(settings)}?subject=unsubscribe%20{UNSUBSCRIBE_TOKEN}"
        lines += [
            address_header("List-Id", masthead.list_id if masthead else settings.list_id_header),
            # Written by hand: a folder might split the placeholder across lines.
            f"List-Unsubscribe: <{url}>,\r\n <{mailto}>\r\n".encode("ascii"),
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        ]
    return lines


def _body(compiled: CompiledEmail) -> tuple[bytes, bytes]:
    """Return (Content-Type header, body) of the multipart/alternative tree."""
    # "=_" never occurs in quoted-printable or base64 output, so it cannot clash with content.
    alt = f"=_mp_alt_{secrets.token_hex(12)}".encode()
    rel = f"=_mp_rel_{secrets.token_hex(12)}".encode()
    qp_header = b'; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    html_part = b"Content-Type: text/html" + qp_header + _qp(compiled.html)
    parts = [
        b"--" + alt + CRLF,
        b"Content-Type: text/plain" + qp_header + _qp(compiled.text) + CRLF,
        b"--" + alt + CRLF,
    ]
    if compiled.images:
        parts.append(b'Content-Type: multipart/related; type="text/html"; boundary="' + rel + b'"')
        parts.append(CRLF + CRLF + b"--" + rel + CRLF + html_part + CRLF)
        for image in compiled.images:
            b64 = encodebytes(image.content).replace(b"\n", CRLF)
            parts.append(
                b"--" + rel + CRLF + b"Content-Type: image/png\r\n"
                b"Content-Transfer-Encoding: base64\r\n"
                b"Content-ID: <" + image.cid.encode("ascii") + b">\r\n"
                b'Content-Disposition: inline; filename="' + image.filename.encode("ascii") + b'"'
                b"\r\n\r\n" + b64
            )
        parts.append(b"--" + rel + b"--" + CRLF)
    else:
        parts.append(html_part + CRLF)
    parts.append(b"--" + alt + b"--" + CRLF)
    content_type = b'Content-Type: multipart/alternative; boundary="' + alt + b'"\r\n'
    return content_type, b"".join(parts)


def split_template(template: bytes, tags: int = 0) -> list[Piece]:
    """Split encoded bytes into literal chunks, token slices and merge slots (of `tags` tags).

    Soft breaks inside a placeholder are seen through; a merge stand-in is cut out whole.
    """
    segments = template.split(SOFT_BREAK)
    flat = b"".join(segments)
    # Where each segment starts, in the flattened text and in the template.
    flat_starts, orig_starts = [], []
    f = o = 0
    for seg in segments:
        flat_starts.append(f)
        orig_starts.append(o)
        f += len(seg)
        o += len(seg) + len(SOFT_BREAK)

    def orig(pos: int) -> int:
        i = bisect_right(flat_starts, pos) - 1
        return orig_starts[i] + pos - flat_starts[i]

    found: list[tuple[int, int]] = []  # (flat position, kind)
    for kind, ph in _PLACEHOLDERS:
        pos = flat.find(ph)
        while pos != -1:
            found.append((pos, kind))
            pos = flat.find(ph, pos + len(ph))
    merges: dict[int, tuple[int, int]] = {}  # flat position -> (kind, tag number)
    for index in range(tags):
        for kind, part in _MERGE_KINDS:
            ph = merge_tags.placeholder(index, part).encode()
            pos = flat.find(ph)
            while pos != -1:
                merges[pos] = (kind, index)
                found.append((pos, kind))
                pos = flat.find(ph, pos + len(ph))
    found.sort()

    pieces: list[Piece] = []
    cursor = 0  # next template byte not yet emitted
    for pos, kind in found:
        if pos in merges:
            o_start = orig(pos)
            pieces.append(template[cursor:o_start])
            pieces.append((kind, merges[pos][1], 0))
            cursor = orig(pos + merge_tags.PLACEHOLDER_LENGTH - 1) + 1
            continue
        # Walk the placeholder, cutting a new slice wherever a soft break interrupts it.
        start = 0
        while start < LIST_TOKEN_LENGTH:
            o_start = orig(pos + start)
            end = start + 1
            while end < LIST_TOKEN_LENGTH and orig(pos + end) == o_start + (end - start):
                end += 1
            pieces.append(template[cursor:o_start])
            pieces.append((kind, start, end))
            cursor = o_start + (end - start)
            start = end
    pieces.append(template[cursor:])
    return [p for p in pieces if p != b""]


def stuff_pieces(pieces: tuple[Piece, ...]) -> tuple[Piece, ...]:
    """Dot-stuff literal pieces once; mark token slices that start a line (kind + 2).

    The per-recipient headers before the template never start with a dot, and tokens hold
    no line breaks, so a line can only start inside a literal or right after one that ends
    with CRLF; fill_wire stuffs such a token slice only if it starts with a dot.
    """
    out: list[Piece] = []
    line_start = True
    for p in pieces:
        if isinstance(p, bytes):
            lead = b"." if line_start and p.startswith(b".") else b""
            out.append(lead + p.replace(b"\r\n.", b"\r\n.."))
            line_start = p.endswith(CRLF)
        elif p[0] >= MERGE_HTML:
            # A value starts with a soft break and ends with one: never a dot at a line's
            # start inside it, and whatever follows starts a line.
            out.append(p)
            line_start = True
        else:
            kind, start, end = p
            out.append((kind + 2 if line_start else kind, start, end))
            line_start = False
    if not line_start:
        out.append(CRLF)
    out.append(b".\r\n")
    return tuple(out)


@lru_cache(maxsize=4096)
def qp_value(value: str, html: bool) -> bytes:
    """Return a merge value as quoted-printable between soft breaks (cached: values repeat).

    Everything but letters, digits and a few marks is escaped (a "." never starts a line, so
    dot-stuffing has nothing to do), and no escape is split across lines.
    """
    data = (escape(value) if html else value).encode("utf-8")
    encoded = _QP_UNSAFE.sub(_qp_escape, data)  # scanned in C; most names need nothing
    if not encoded:
        return SOFT_BREAK
    lines, start = [], 0
    while len(encoded) - start > QP_LINE:
        cut = start + QP_LINE
        # A literal "=" never occurs: one near the cut starts an escape, kept whole.
        cut -= 1 if encoded[cut - 1] == EQUALS else 2 if encoded[cut - 2] == EQUALS else 0
        lines.append(encoded[start:cut])
        start = cut
    lines.append(encoded[start:])
    return SOFT_BREAK + SOFT_BREAK.join(lines) + SOFT_BREAK


def _qp_escape(match: re.Match[bytes]) -> bytes:
    return b"=%02X" % match[0][0]


@dataclass(frozen=True)
class PreparedMessage:
    """A message encoded once, with slots for the per-recipient token slices."""

    pieces: tuple[Piece, ...]
    sender: str  # the envelope sender (bare address)
    wire: tuple[Piece, ...] = ()  # the same, dot-stuffed and terminated for DATA
    tags: tuple[merge_tags.MergeTag, ...] = ()  # the merge tags whose values fill its slots

    @classmethod
    def build(
        cls,
        compiled: CompiledEmail,
        settings: Settings,
        *,
        list_headers: bool = True,
        extra_headers: dict[str, str] | None = None,
        masthead: Masthead | None = None,
    ) -> PreparedMessage:
        """Encode `compiled` once; list_headers=False drops List-* (confirmation emails).

        With a masthead: its newsletter's From, Reply-To and List-Id, and an unsubscribe URL
        that leaves that newsletter only.
        """
        content_type, body = _body(compiled)
        lines = _headers(compiled, settings, list_headers, extra_headers or {}, masthead)
        head = b"".join(lines) + content_type
        pieces = tuple(split_template(head + CRLF + body, len(compiled.tags)))
        return cls(pieces, settings.sender.addr_spec, stuff_pieces(pieces), compiled.tags)

    def merge_values(self, name: str | None, attributes: Mapping[str, Any] | None) -> MergeValues:
        """Return one reader's merge values, encoded for the HTML and the text part."""
        out = []
        seen: dict[str, tuple[bytes, bytes]] = {}  # `{{ name }}` and `{{ name | "x" }}` alike
        for tag in self.tags:
            value = merge_tags.reader_value(tag, name, attributes)
            encoded = seen.get(value)
            if encoded is None:
                encoded = seen[value] = (qp_value(value, True), qp_value(value, False))
            out.append(encoded)
        return tuple(out)

    def fill(
        self,
        *,
        to: str,
        unsubscribe_token: str,
        preferences_token: str,
        message_id: str,
        date: str,
        merge: MergeValues | None = None,
    ) -> bytes:
        """Return the message for one recipient: per-recipient headers, then the template.

        Without `merge`, merge tags show their defaults (test copies).
        """
        head, tokens = self._head(to, unsubscribe_token, preferences_token, message_id, date)
        values = merge if merge is not None else self._defaults()
        return head + b"".join(_piece(p, tokens, values) for p in self.pieces)

    def fill_wire(
        self,
        *,
        to: str,
        unsubscribe_token: str,
        preferences_token: str,
        message_id: str,
        date: str,
        merge: MergeValues | None = None,
    ) -> bytes:
        """Return fill()'s message already dot-stuffed and ended with CRLF.CRLF (for DATA).

        The 70 KB stuffing scan then happens once per issue, not once per recipient.
        """
        head, tokens = self._head(to, unsubscribe_token, preferences_token, message_id, date)
        values = merge if merge is not None else self._defaults()
        parts = [head]
        for p in self.wire:
            if isinstance(p, bytes):
                parts.append(p)
                continue
            kind, start, end = p
            if kind >= MERGE_HTML:
                parts.append(values[start][kind - MERGE_HTML])
                continue
            chunk = tokens[kind & 1][start:end]
            parts.append(b"." + chunk if kind >= 2 and chunk.startswith(b".") else chunk)
        return b"".join(parts)

    def _defaults(self) -> MergeValues:
        return self.merge_values(None, None) if self.tags else ()

    def _head(
        self, to: str, unsubscribe_token: str, preferences_token: str, message_id: str, date: str
    ) -> tuple[bytes, tuple[bytes, bytes]]:
        tokens = (unsubscribe_token.encode("ascii"), preferences_token.encode("ascii"))
        if len(tokens[0]) != LIST_TOKEN_LENGTH or len(tokens[1]) != LIST_TOKEN_LENGTH:
            raise ValueError("list tokens must have the fixed placeholder length")
        for value in (to, message_id, date):
            if "\r" in value or "\n" in value:
                raise ValueError("line break in a header value")
        head = b"To: %s\r\nDate: %s\r\nMessage-ID: %s\r\n" % (
            to.encode("ascii"),
            date.encode("ascii"),
            message_id.encode("ascii"),
        )
        return head, tokens


def _piece(p: Piece, tokens: tuple[bytes, bytes], values: MergeValues) -> bytes:
    if isinstance(p, bytes):
        return p
    if p[0] >= MERGE_HTML:
        return values[p[1]][p[0] - MERGE_HTML]
    return tokens[p[0]][p[1] : p[2]]
