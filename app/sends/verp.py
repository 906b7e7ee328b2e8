"""VERP return paths: `bounces+<delivery id>.<tag>@BOUNCE_DOMAIN`, the tag an HMAC of the id.

A bounce comes back to the envelope sender, so the address alone names the delivery; the tag
stops anyone from inventing addresses that would suppress other readers. Hex keeps the local
part valid when a relay lower-cases it.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from app.config import Settings, ensure_secret_keys

PREFIX = "bounces"
TAG_LENGTH = 16  # hex characters: 64 bits, beyond guessing at SMTP speed
_VERP = re.compile(rf"{PREFIX}\+([0-9]{{1,18}})\.([0-9a-f]{{{TAG_LENGTH}}})", re.IGNORECASE)
VERP_SALT = b"morningpost.verp"
WEBHOOK_SALT = b"morningpost.bounce-webhook"


def derived_key(key: str, salt: bytes) -> bytes:
    """Return a key for one purpose derived from a signing key (one secret, one use)."""
    return hmac.new(key.encode(), salt, hashlib.sha256).digest()


def _tag(key: str, delivery_id: int) -> str:
    mac = hmac.new(derived_key(key, VERP_SALT), str(delivery_id).encode(), hashlib.sha256)
    return mac.hexdigest()[:TAG_LENGTH]


def verp_address(delivery_id: int, settings: Settings) -> str:
    """Return the envelope sender (MAIL FROM) of one delivery."""
    key = ensure_secret_keys(settings)[-1]  # newest last
    return f"{PREFIX}+{delivery_id}.{_tag(key, delivery_id)}@{settings.verp_domain}"


def looks_like_verp(address: str) -> bool:
    """Tell whether an address is shaped like ours (valid or not)."""
    local = _local_part(address)
    return local.lower().startswith(PREFIX + "+")


def parse_verp(address: str, settings: Settings) -> int | None:
    """Return the delivery id of a VERP address, or None if it is forged or garbled."""
    match = _VERP.fullmatch(_local_part(address))
    if match is None:
        return None
    delivery_id = int(match.group(1))
    tag = match.group(2).lower()
    # Any key still configured verifies, so mail sent before a key rotation still bounces home.
    for key in ensure_secret_keys(settings):
        if hmac.compare_digest(tag, _tag(key, delivery_id)):
            return delivery_id
    return None


def _local_part(address: str) -> str:
    addr = address.strip().strip("<>").strip()
    return addr.rsplit("@", 1)[0] if "@" in addr else addr


def webhook_secret(settings: Settings) -> str:
    """Return the bounce webhook's shared secret (HMAC-SHA256 of the salt under the newest key)."""
    return derived_key(ensure_secret_keys(settings)[-1], WEBHOOK_SALT).hex()


def webhook_signature_ok(body: bytes, header: str | None, settings: Settings) -> bool:
    """Check `X-MorningPost-Signature: sha256=<hex>` over the raw body against every key."""
    if not header or not header.startswith("sha256="):
        return False
    # Compared as bytes: compare_digest raises on non-ASCII text (`sha256=é` was a 500).
    given = header.removeprefix("sha256=").strip().lower().encode("utf-8", "replace")
    for key in ensure_secret_keys(settings):
        secret = derived_key(key, WEBHOOK_SALT).hex().encode()
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(given, expected):
            return True
    return False
