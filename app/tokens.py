"""Signed tokens for links in emails: one salt per purpose, several keys for rotation."""

from __future__ import annotations

import binascii
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from itsdangerous import BadSignature, Signer, URLSafeTimedSerializer
from itsdangerous.exc import SignatureExpired

from app.errors import BadToken

CONFIRM_SALT = "morningpost.confirm"
UNSUBSCRIBE_SALT = "morningpost.unsubscribe"
PREFERENCES_SALT = "morningpost.preferences"
UNDO_SALT = "morningpost.undo-unsubscribe"
# "Subscribe me again" works this long after the unsubscribe it undoes.
UNDO_MAX_AGE_SECONDS = 24 * 3600

# Subscriber ids in list tokens are zero-padded so every token has the same length: the
# per-recipient fill then writes them into bytes encoded once per issue (see rendering.fill).
ID_WIDTH = 12
# A list token also carries the subscriber's nonce (Subscriber.token_nonce, 8 url-safe
# characters): an id alone would open whoever holds that id later.
NONCE_LENGTH = 8
# The nonce of links that belong to nobody (previews, test copies: subscriber 0).
NOBODY_NONCE = "0" * NONCE_LENGTH
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NONCE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class ListToken(NamedTuple):
    """What an unsubscribe or preferences token names; nonce None for a pre-nonce token."""

    subscriber_id: int
    nonce: str | None


def new_nonce() -> str:
    """Return a fresh random list-token nonce for a subscriber row."""
    return secrets.token_urlsafe(6)  # 6 bytes → exactly 8 url-safe characters


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) under one fixed key, its padded key states hashed once."""

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:  # SHA-256's block size
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, message: bytes) -> bytes:
        """Return HMAC(key, message), as hmac.digest would."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _prederived(keys: list[str], salt: str) -> Signer:
    """Return a list-link signer whose per-salt keys are derived once, not at every signature.

    Its tokens are byte for byte those of Signer(keys, salt=salt, digest_method=sha256): the
    same derivation, done up front. Two list tokens go into every email of a send.
    """
    derived = [Signer(key, salt=salt, digest_method=hashlib.sha256).derive_key() for key in keys]
    return Signer(derived, salt=salt, digest_method=hashlib.sha256, key_derivation="none")


class TokenService:
    """Make and check the tokens that go into links; keys are listed oldest first."""

    def __init__(self, keys: list[str], confirm_max_age: int) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        # itsdangerous signs with the last key and verifies with any of them.
        self._keys = list(keys)
        self._confirm = URLSafeTimedSerializer(self._keys, salt=CONFIRM_SALT)
        self._confirm_max_age = confirm_max_age
        self._undo = URLSafeTimedSerializer(self._keys, salt=UNDO_SALT)
        self._list_signers = {
            salt: _prederived(self._keys, salt) for salt in (UNSUBSCRIBE_SALT, PREFERENCES_SALT)
        }
        # Signing (every email, twice) with the newest derived key in one C call; the result is
        # Signer.sign's, byte for byte (tests/integration/test_ids_and_list_tokens.py). Reading
        # stays itsdangerous'.
        self._list_macs = {
            salt: _HmacSha256(signer.secret_keys[-1]) for salt, signer in self._list_signers.items()
        }

    # Confirmation: time-limited, bound to the address it was sent to.
    def confirm_token(self, subscriber_id: int, email: str) -> str:
        """Return a time-limited token confirming `email` for this subscriber."""
        return self._confirm.dumps([subscriber_id, _email_tag(email)])

    def read_confirm_token(self, token: str) -> tuple[int, str]:
        """Return (subscriber id, address tag) or raise BadToken."""
        try:
            data = self._confirm.loads(token, max_age=self._confirm_max_age)
        except SignatureExpired:
            raise BadToken("This confirmation link has expired. Please sign up again.") from None
        except BadSignature:
            raise BadToken("This confirmation link is not valid.") from None
        if not (isinstance(data, list) and len(data) == 2 and isinstance(data[0], int)):
            raise BadToken("This confirmation link is not valid.")
        return data[0], str(data[1])

    # Undo: only on the page that answered the unsubscribe, bound to that very unsubscribe.
    def undo_token(self, subscriber_id: int, nonce: str, unsubscribed_at: datetime) -> str:
        """Return a 24-hour token that undoes the unsubscribe made at `unsubscribed_at`."""
        return self._undo.dumps([subscriber_id, nonce, _micros(unsubscribed_at)])

    def read_undo_token(self, token: str) -> tuple[int, str, int]:
        """Return (subscriber id, nonce, unsubscribe time in µs) or raise BadToken."""
        try:
            data = self._undo.loads(token, max_age=UNDO_MAX_AGE_SECONDS)
        except SignatureExpired:
            raise BadToken(
                "This button has expired; you can sign up again on the sign-up page."
            ) from None
        except BadSignature:
            raise BadToken("This button is not valid.") from None
        if not (
            isinstance(data, list)
            and len(data) == 3
            and isinstance(data[0], int)
            and isinstance(data[1], str)
            and isinstance(data[2], int)
        ):
            raise BadToken("This button is not valid.")
        return data[0], data[1], data[2]

    # List links: never expire, carry no address, fixed length.
    def unsubscribe_token(self, subscriber_id: int, nonce: str = NOBODY_NONCE) -> str:
        """Return the unsubscribe token of a subscriber (pass the row's token_nonce)."""
        return self._sign(UNSUBSCRIBE_SALT, subscriber_id, nonce)

    def preferences_token(self, subscriber_id: int, nonce: str = NOBODY_NONCE) -> str:
        """Return the preferences-page token of a subscriber (pass the row's token_nonce)."""
        return self._sign(PREFERENCES_SALT, subscriber_id, nonce)

    def open_unsubscribe_token(self, token: str) -> ListToken:
        """Return the id and nonce an unsubscribe token names, or raise BadToken."""
        return self._unsign(UNSUBSCRIBE_SALT, token)

    def open_preferences_token(self, token: str) -> ListToken:
        """Return the id and nonce a preferences token names, or raise BadToken."""
        return self._unsign(PREFERENCES_SALT, token)

    def read_unsubscribe_token(self, token: str) -> int:
        """Return the subscriber id in an unsubscribe token (the nonce unchecked) or raise."""
        return self.open_unsubscribe_token(token).subscriber_id

    def read_preferences_token(self, token: str) -> int:
        """Return the subscriber id in a preferences token (the nonce unchecked) or raise."""
        return self.open_preferences_token(token).subscriber_id

    def list_tokens(self, subscriber_id: int, nonce: str = NOBODY_NONCE) -> tuple[str, str]:
        """Return (unsubscribe token, preferences token) of a subscriber, as the two calls do.

        Both sign the same payload: one check and one encoding for the pair (every email
        carries both, so this is per-message work of a send).
        """
        payload = _list_payload(subscriber_id, nonce)
        return (
            _signed(payload, self._list_macs[UNSUBSCRIBE_SALT].digest(payload)),
            _signed(payload, self._list_macs[PREFERENCES_SALT].digest(payload)),
        )

    def _sign(self, salt: str, subscriber_id: int, nonce: str) -> str:
        payload = _list_payload(subscriber_id, nonce)
        return _signed(payload, self._list_macs[salt].digest(payload))

    def _unsign(self, salt: str, token: str) -> ListToken:
        try:
            value = self._list_signers[salt].unsign(token).decode()
        except (BadSignature, UnicodeError):
            raise BadToken("This link is not valid.") from None
        digits, dot, nonce = value.partition(".")
        if len(digits) != ID_WIDTH or not digits.isascii() or not digits.isdigit():
            raise BadToken("This link is not valid.")
        if not dot:
            # Signed before nonces existed: still ours, but it cannot tell two holders of
            # one id apart, so callers only let it unsubscribe (see README, Hardening).
            return ListToken(int(digits), None)
        if len(nonce) != NONCE_LENGTH or not _NONCE_CHARS.issuperset(nonce):
            raise BadToken("This link is not valid.")
        return ListToken(int(digits), nonce)

    @property
    def list_token_length(self) -> int:
        """Return the length every unsubscribe/preferences token has."""
        return len(self.unsubscribe_token(0))


def _list_payload(subscriber_id: int, nonce: str) -> bytes:
    """Return the signed part of a list token: the zero-padded id and the nonce."""
    if not 0 <= subscriber_id < 10**ID_WIDTH:
        raise ValueError("subscriber id out of range")
    if len(nonce) != NONCE_LENGTH or not _NONCE_CHARS.issuperset(nonce):
        raise ValueError("a nonce is 8 url-safe characters")
    return b"%0*d.%s" % (ID_WIDTH, subscriber_id, nonce.encode("ascii"))


# base64 to its URL-safe alphabet, as base64.urlsafe_b64encode translates it.
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _signed(payload: bytes, mac: bytes) -> str:
    """Return payload.signature, the signature URL-safe base64 without padding (itsdangerous')."""
    # A SHA-256 MAC is 32 bytes: 43 characters and one "=" of padding, dropped.
    return (
        payload + b"." + binascii.b2a_base64(mac, newline=False)[:43].translate(_URLSAFE)
    ).decode("ascii")


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """Return a UTC moment as whole microseconds since 1970 (exact, unlike a float)."""
    return _micros(moment)


def _email_tag(email: str) -> str:
    # A short digest, so a confirm link for an old address stops working if it changes.
    return hashlib.sha256(email.encode()).hexdigest()[:16]


def email_tag(email: str) -> str:
    """Return the tag a confirm token carries for `email`."""
    return _email_tag(email)


def new_editor_token() -> str:
    """Return a fresh editor API token (shown once)."""
    return "mp_" + secrets.token_urlsafe(32)


def hash_secret(value: str) -> str:
    """Return the SHA-256 hex digest stored for a token or an address."""
    return hashlib.sha256(value.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    """Compare two digests in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())
