"""Reader fields as the list keeps them: names, time zones, masked addresses, list cursors."""

from __future__ import annotations

from app.config.timezones import is_time_zone
from app.errors import InvalidInput
from app.models.base import ID_MAX

NAME_MAX = 200
PAGE_MAX = 200


def clean_name(raw: str | None) -> str:
    """Return a trimmed display name or raise InvalidInput (line breaks, over 200 characters)."""
    if raw is None:
        return ""
    if "\r" in raw or "\n" in raw:
        # A name ends up in headers and greetings; a line break there is an injection attempt.
        raise InvalidInput("A name cannot contain a line break.")
    if any(ord(c) < 32 and c != "\t" for c in raw):
        raise InvalidInput("A name cannot contain control characters.")
    name = raw.strip()
    if len(name) > NAME_MAX:
        raise InvalidInput(f"A name can be at most {NAME_MAX} characters long.")
    return name


def clean_timezone(raw: str | None) -> str | None:
    """Return a known IANA time zone name, None when absent, or raise InvalidInput."""
    if raw is None or not raw.strip():
        return None
    name = raw.strip()
    if not is_time_zone(name):
        raise InvalidInput(
            f"{name[:64]!r} is not a known time zone; use an IANA name such as "
            "Europe/Berlin, America/New_York or UTC."
        )
    return name


def timezone_or_default(raw: str | None, default: str) -> str:
    """Return the browser's time zone when it is a known name, else the default (never fails)."""
    # A public sign-up must not fail over a zone an old browser names oddly.
    try:
        return clean_timezone(raw) or default
    except InvalidInput:
        return default


def mask_email(email: str) -> str:
    """Return the address with its local part hidden but the first letter: j•••@example.org."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}•••@{domain}" if local else email


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_cursor(cursor: str | None) -> int | None:
    """Return the id an opaque cursor stands for, or raise InvalidInput."""
    if cursor is None or cursor == "":
        return None
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 10 or int(cursor) > ID_MAX:
        raise InvalidInput("That cursor is not valid; use next_cursor from the previous page.")
    return int(cursor)
