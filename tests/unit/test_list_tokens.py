"""The pair of list tokens every email carries: one call, the same bytes as itsdangerous'."""

from __future__ import annotations

import hashlib

from itsdangerous import Signer

from app.tokens import PREFERENCES_SALT, UNSUBSCRIBE_SALT, TokenService, new_nonce


def test_the_pair_is_byte_for_byte_what_a_plain_signer_gives_and_opens() -> None:
    old, new = "an-old-key-0123456789abcdef", "the-new-key-" + "x" * 80  # longer than a block
    tokens = TokenService([old, new], 3600)
    for subscriber_id in (0, 1, 42, 10**12 - 1):
        nonce = new_nonce()
        unsubscribe, preferences = tokens.list_tokens(subscriber_id, nonce)
        payload = f"{subscriber_id:012d}.{nonce}"
        for token, salt in ((unsubscribe, UNSUBSCRIBE_SALT), (preferences, PREFERENCES_SALT)):
            plain = Signer([old, new], salt=salt, digest_method=hashlib.sha256)
            assert token == plain.sign(payload).decode()
        assert unsubscribe == tokens.unsubscribe_token(subscriber_id, nonce)
        assert preferences == tokens.preferences_token(subscriber_id, nonce)
        assert tokens.open_unsubscribe_token(unsubscribe) == (subscriber_id, nonce)
        assert tokens.open_preferences_token(preferences) == (subscriber_id, nonce)


def test_the_pair_refuses_what_a_single_token_refuses() -> None:
    tokens = TokenService(["k"], 3600)
    for subscriber_id, nonce in (
        (-1, "abcdefgh"),
        (10**12, "abcdefgh"),
        (1, "short"),
        (1, "abc/efgh"),
    ):
        for make in (tokens.list_tokens, tokens.unsubscribe_token):
            try:
                make(subscriber_id, nonce)
            except ValueError:
                continue
            raise AssertionError(f"{make.__name__} took {subscriber_id}, {nonce!r}")
