"""Stand-ins written into the once-per-issue render, replaced per subscriber.

Each has exactly the length of the token that replaces it and uses only letters, so it
survives HTML inlining and quoted-printable encoding unchanged (QP may only insert soft line
breaks inside it, which the fill step accounts for).
"""

from __future__ import annotations

from app.tokens import ID_WIDTH, NONCE_LENGTH

# The Signer token is "<12 digits>.<8-char nonce>.<43 chars of base64 SHA-256>".
LIST_TOKEN_LENGTH = ID_WIDTH + 1 + NONCE_LENGTH + 1 + 43


def _placeholder(tag: str) -> str:
    return (tag + "Q" * LIST_TOKEN_LENGTH)[:LIST_TOKEN_LENGTH]


UNSUBSCRIBE_TOKEN = _placeholder("MPXUNSUBSCRIBETOKENX")
PREFERENCES_TOKEN = _placeholder("MPXPREFERENCESTOKENX")

ALL = (UNSUBSCRIBE_TOKEN, PREFERENCES_TOKEN)
