"""DKIM signing (RFC 6376, rsa-sha256, relaxed/simple) with OpenSSL RSA, and key generation.

dkimpy signs with pure-Python RSA (about 10 ms a message); here the canonical forms are built
in a few lines and the RSA step goes to `cryptography` (OpenSSL), which is ten times faster.
The output is checked against dkimpy's verifier in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.config import Settings

# Signed headers, in order. From, Subject and the List-Unsubscribe pair appear twice: the
# second entry signs "no further instance", so nobody en route can add a second one.
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    # Gmail's feedback loop trusts Feedback-ID only when it is signed; a signed Content-Type
    # keeps the MIME structure (boundary) from being swapped under the body hash.
    "Feedback-ID",
    "Content-Type",
    "From",
    "Subject",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
_WSP = re.compile(rb"[ \t]+")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _split(message: bytes) -> tuple[bytes, bytes, bytes]:
    """Return (header block, separator, body) of a raw message."""
    match = _HEADER_END.search(message)
    if match is None:
        return message, b"", b""
    return message[: match.start()], match.group(), message[match.end() :]


def _header_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """Return (name, raw value) pairs; the value keeps its folding."""
    fields: list[tuple[bytes, bytes]] = []
    for line in re.split(rb"\r?\n(?![ \t])", block):
        name, sep, value = line.partition(b":")
        if sep:
            fields.append((name, value))
    return fields


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """Return one header in relaxed canonical form (RFC 6376 3.4.2), with CRLF."""
    unfolded = _FOLD.sub(b"", value)
    return name.strip().lower() + b":" + _WSP.sub(b" ", unfolded).strip(b" \t") + b"\r\n"


def simple_body(body: bytes) -> bytes:
    """Return the body in simple canonical form (RFC 6376 3.4.3): CRLF, one final line end."""
    # bytes.replace runs at C speed; a regex here costs more than the RSA signature. Our own
    # messages are CRLF throughout, and counting is cheaper than rewriting 70 KB per reader.
    if b"\n" in body and body.count(b"\n") != body.count(b"\r\n"):
        body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    crlf = body
    if not crlf:
        return b"\r\n"
    if not crlf.endswith(b"\r\n"):
        return crlf + b"\r\n"
    end = len(crlf)
    while crlf.endswith(b"\r\n\r\n", 0, end):
        end -= 2
    return crlf[:end]


class DkimSigner:
    """Sign outgoing messages for one selector and domain; build once per process."""

    def __init__(self, selector: str, domain: str, private_key_pem: bytes) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the DKIM key must be an RSA key")
        self._key = key
        self.selector = selector
        self.domain = domain
        self._h = ":".join(SIGNED_HEADERS)

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        """Return a signer when DKIM is configured, else None."""
        if settings.dkim_private_key_path is None:
            return None
        pem = settings.dkim_private_key_path.read_bytes()
        return cls(settings.dkim_selector, settings.dkim_domain, pem)

    def sign(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """Return the message with a DKIM-Signature header prepended."""
        return self.header(message, timestamp=timestamp) + message

    def header(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """Return the DKIM-Signature header (with its line end) for `message`.

        Prepending it changes no other byte, so it can go in front of the dot-stuffed wire
        form of the same message as well.
        """
        block, sep, body = _split(message)
        newline = b"\r\n" if b"\r\n" in (sep or block[:1000]) else b"\n"
        bh = base64.b64encode(hashlib.sha256(simple_body(body)).digest())
        fields = _header_fields(block)
        # RFC 6376 5.4.2: repeated names take instances from the bottom up; a name with no
        # instance left contributes nothing (that is what makes oversigning work).
        by_name: dict[bytes, list[bytes]] = {}
        for name, value in fields:
            by_name.setdefault(name.strip().lower(), []).append(value)
        signed = bytearray()
        for wanted in SIGNED_HEADERS:
            stack = by_name.get(wanted.lower().encode())
            if stack:
                signed += relaxed_header(wanted.encode(), stack.pop())
        t = int(time.time()) if timestamp is None else timestamp
        # Folded between tags; relaxed canonicalisation turns each fold into one space.
        head = (
            f" v=1; a=rsa-sha256; c=relaxed/simple; d={self.domain}; s={self.selector};"
            f"\r\n\tt={t}; bh={bh.decode()};"
            f"\r\n\th={self._h};"
            "\r\n\tb="
        ).encode()
        signed += relaxed_header(b"DKIM-Signature", head)[:-2]  # no CRLF after the last one
        signature = self._key.sign(bytes(signed), padding.PKCS1v15(), hashes.SHA256())
        b64 = base64.b64encode(signature)
        folded = b"\r\n\t".join(b64[i : i + 72] for i in range(0, len(b64), 72))
        header = b"DKIM-Signature:" + head + folded
        return header.replace(b"\r\n", newline) + newline


def feedback_id(issue_id: int, settings: Settings) -> str:
    """Return the Feedback-ID header value (Gmail's feedback loop: campaign:list:kind:sender)."""
    list_part = settings.list_id_header.rsplit("<", 1)[-1].rstrip(">").replace(":", "")
    return f"{issue_id}:{list_part}:morningpost:{settings.sender.domain.lower()}"


def txt_record(selector: str, domain: str, public_key_der: bytes) -> str:
    """Return the DNS TXT record publishing a public key (split into 255-octet strings)."""
    value = "v=DKIM1; k=rsa; p=" + base64.b64encode(public_key_der).decode()
    chunks = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
    return f"{selector}._domainkey.{domain}. IN TXT ( {chunks} )"


def txt_value(public_key_der: bytes) -> str:
    """Return the TXT record's text once the strings are joined, as a resolver returns it."""
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(public_key_der).decode()


def public_key_der(private_key_pem: bytes) -> bytes:
    """Return the SubjectPublicKeyInfo DER of a PEM private key (the p= of the TXT record)."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_key(path: Path, selector: str, domain: str) -> str:
    """Write a new 2048-bit RSA key as PEM (mode 0600, never overwriting); return the TXT record."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: replacing a published key by accident would break every signature in flight.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return txt_record(selector, domain, public_key_der(pem))
