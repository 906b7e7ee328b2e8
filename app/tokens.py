"""Signed tokens for links in emails: one salt per purpose, several keys for rotation."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, Signer, URLSafeTimedSerializer
from itsdangerous.exc import SignatureExpired

from app.errors import BadToken

CONFIRM_SALT = "morningpost.confirm"
UNSUBSCRIBE_SALT = "morningpost.unsubscribe"
PREFERENCES_SALT = "morningpost.preferences"

# Subscriber ids in list tokens are zero-padded so every token has the same length: the
# per-recipient fill then writes them into bytes encoded once per issue (see rendering.fill).
ID_WIDTH = 12


class TokenService:
    """Make and check the tokens that go into links; keys are listed oldest first."""

    def __init__(self, keys: list[str], confirm_max_age: int) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        # itsdangerous signs with the last key and verifies with any of them.
        self._keys = list(keys)
        self._confirm = URLSafeTimedSerializer(self._keys, salt=CONFIRM_SALT)
        self._confirm_max_age = confirm_max_age
        self._list_signers = {
            salt: Signer(self._keys, salt=salt, digest_method=hashlib.sha256)
            for salt in (UNSUBSCRIBE_SALT, PREFERENCES_SALT)
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

    # List links: never expire, carry no address, fixed length.
    def unsubscribe_token(self, subscriber_id: int) -> str:
        """Return the unsubscribe token of a subscriber."""
        return self._sign(UNSUBSCRIBE_SALT, subscriber_id)

    def preferences_token(self, subscriber_id: int) -> str:
        """Return the preferences-page token of a subscriber."""
        return self._sign(PREFERENCES_SALT, subscriber_id)

    def read_unsubscribe_token(self, token: str) -> int:
        """Return the subscriber id in an unsubscribe token or raise BadToken."""
        return self._unsign(UNSUBSCRIBE_SALT, token)

    def read_preferences_token(self, token: str) -> int:
        """Return the subscriber id in a preferences token or raise BadToken."""
        return self._unsign(PREFERENCES_SALT, token)

    def _sign(self, salt: str, subscriber_id: int) -> str:
        if not 0 <= subscriber_id < 10**ID_WIDTH:
            raise ValueError("subscriber id out of range")
        return self._list_signers[salt].sign(f"{subscriber_id:0{ID_WIDTH}d}").decode()

    def _unsign(self, salt: str, token: str) -> int:
        try:
            value = self._list_signers[salt].unsign(token).decode()
        except (BadSignature, UnicodeError):
            raise BadToken("This link is not valid.") from None
        if len(value) != ID_WIDTH or not value.isdigit():
            raise BadToken("This link is not valid.")
        return int(value)

    @property
    def list_token_length(self) -> int:
        """Return the length every unsubscribe/preferences token has."""
        return len(self.unsubscribe_token(0))


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
