"""How each environment value is read: comma lists, URLs, addresses, DNS names and key files."""

from __future__ import annotations

import base64
import binascii
import re
from email.utils import parseaddr
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.relay_config import parse_relays

_DNS_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_-]{1,63})*")

# Each function takes the value as pydantic hands it over and returns it as the field keeps it,
# or raises ValueError with the text that follows "MORNINGPOST_<NAME>: " in the start-up error.
# The split_* functions run before type validation, so a list or dict given in code passes.


def split_list(value: object) -> object:
    """Split a comma-separated list, dropping empty items."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def split_hosts(value: object) -> object:
    """Split a comma-separated list of host names, lower-cased."""
    if isinstance(value, str):
        return [h.strip().lower() for h in value.split(",") if h.strip()]
    return value


def split_networks(value: object) -> object:
    """Split a comma-separated list of addresses or networks (CIDR)."""
    if not isinstance(value, str):
        return value
    networks: list[IPv4Network | IPv6Network] = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an address or network: {item!r}") from None
    return networks


def split_keys(value: object) -> object:
    """Split the comma-separated signing keys; an empty one is a mistake, not a gap."""
    if isinstance(value, str):
        keys = [k.strip() for k in value.split(",")]
        if any(not k for k in keys):
            raise ValueError("empty key in the comma-separated list")
        return keys
    return value


def split_domain_rates(value: object) -> object:
    """Split "gmail.com=20,yahoo.com=10" into lower-cased domains and positive rates."""
    if not isinstance(value, str):
        return value
    rates: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        domain, sep, rate = item.partition("=")
        try:
            number = float(rate)
        except ValueError:
            number = -1.0
        if not sep or not domain.strip() or number <= 0:
            raise ValueError(f"expected domain=messages-per-second, got {item!r}")
        rates[domain.strip().lower()] = number
    return rates


def check_database_url(value: str) -> str:
    """Accept SQLite and PostgreSQL URLs; name psycopg 3 as the PostgreSQL driver."""
    scheme = urlsplit(value).scheme
    if not scheme or scheme.split("+")[0] not in ("sqlite", "postgresql", "postgres"):
        raise ValueError(f"unsupported scheme {scheme!r}; use sqlite:/// or postgresql://")
    if scheme in ("postgresql", "postgres"):
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        value = "postgresql+psycopg" + value[len(scheme) :]
    return value


def check_smtp_url(value: str | None) -> str | None:
    """Accept one relay URL or several; blank means the capture mailer."""
    if value is None or value.strip() == "":
        return None
    specs = parse_relays(value)  # one relay or several, each with ?name=&rate=&daily=&weight=
    if len(specs) == 1 and specs[0].plain:
        return value.strip()
    return value


def check_base_url(value: str) -> str:
    """Accept an http(s) URL with a host, without its trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value.rstrip("/")


def check_from(value: str) -> str:
    """Accept an address with a dotted domain (and a name), on one line."""
    if not value:
        return value
    if "\r" in value or "\n" in value:
        raise ValueError("line breaks are not allowed")
    _name, addr = parseaddr(value)
    if "@" not in addr or "." not in addr.rsplit("@", 1)[1]:
        raise ValueError(f"not an address: {value!r}")
    return value


def check_dns_name(value: str) -> str:
    """Accept a DNS name (or nothing), lower-cased and without the root dot."""
    value = value.strip().lower().rstrip(".")
    if value and not _DNS_NAME.fullmatch(value):
        raise ValueError(f"not a DNS name: {value!r}")
    return value


def check_dkim_key_file(value: Path) -> Path:
    """Accept a readable, unencrypted PEM file holding an RSA key of at least 1024 bits."""
    try:
        pem = value.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the key file {str(value)!r}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ValueError(f"{str(value)!r} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 1024:
        raise ValueError(f"{str(value)!r} is not an RSA key of at least 1024 bits")
    return value


def check_mailbox_url(value: str) -> str:
    """Accept imaps://, imap:// or pop3s:// with a user, a password and a host (or nothing)."""
    value = value.strip()
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("imaps", "imap", "pop3s"):
        raise ValueError("use imaps://, imap:// (STARTTLS) or pop3s://user:pass@host/")
    try:
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise ValueError("the port is not a number from 1 to 65535") from None
    if not parts.hostname or not parts.username or parts.password is None:
        raise ValueError("the URL needs a user, a password and a host")
    return value


def check_media_url(value: str) -> str:
    """Accept s3://bucket/prefix?… (or nothing: files under VAR_DIR/media)."""
    value = value.strip()
    if value:
        parts = urlsplit(value)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError("must look like s3://bucket/prefix?endpoint=https://…&region=…")
    return value


def check_basic_auth(value: str) -> str:
    """Accept user:password (or nothing)."""
    if value and ":" not in value:
        raise ValueError("expected user:password (HTTP Basic credentials)")
    return value


def check_ecdsa_public_key(value: str) -> str:
    """Accept a base64 DER ECDSA public key (or nothing)."""
    if value.strip():
        try:
            key = serialization.load_der_public_key(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise ValueError("not a base64 DER public key (copy it from SendGrid)") from None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("not an ECDSA public key")
    return value.strip()
