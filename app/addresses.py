"""Email addresses in one canonical form, for storing, looking up and counting alike.

Every path that accepts an address (sign-up, the subscribers API, CSV import, the console,
editor accounts, sign-in) goes through `normalize_email`, and every counter keyed on an
address through `canonical_address`, so `ed@ｎewsroom.org`, `ed@ⓝewsroom.org` and
`ed@newsroom。org` are one address everywhere: one row, one limit.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from app.errors import InvalidInput

EMAIL_MAX = 320
LOCAL_PART_MAX = 64
# Full stops a domain may be typed with (UTS #46): ideographic, fullwidth, halfwidth ideographic.
_FULL_STOPS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def normalize_email(raw: str) -> str:
    """Return the normalised address (lower-cased, NFKC + IDNA domain) or raise InvalidInput."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("Please enter an email address.")
    if "\r" in raw or "\n" in raw:
        raise InvalidInput("An email address cannot contain a line break.")
    candidate = raw.strip()
    if len(candidate) > EMAIL_MAX:
        raise InvalidInput("That email address is too long.")
    if len(candidate.rpartition("@")[0]) > LOCAL_PART_MAX:
        # RFC 5321 §4.5.3.1.1: relays may refuse longer ones, so we would never reach it.
        raise InvalidInput(
            f"The part before the @ can be at most {LOCAL_PART_MAX} characters long."
        )
    local, at, domain = candidate.rpartition("@")
    # email-validator folds these too (UTS #46); doing it first keeps the rule visible here.
    candidate = f"{local}{at}{domain.translate(_FULL_STOPS).rstrip('.')}"
    try:
        result = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"That doesn't look like an email address: {exc}") from None
    # ascii_email carries the IDNA (punycode) form of the domain; lower-casing the local part
    # too is what every mainstream provider does and keeps one row per person.
    return (result.ascii_email or result.normalized).lower()


def canonical_address(raw: str) -> str:
    """Return an address as normalize_email does, or a folded best effort when it is not one.

    For keys of counters only: a malformed attempt must still count against the same key as
    its well-formed twins, and must never raise.
    """
    try:
        return normalize_email(raw)
    except InvalidInput:
        folded = unicodedata.normalize("NFKC", raw.strip()).translate(_FULL_STOPS)
        return folded.lower()[:EMAIL_MAX]
