"""A newsletter's fields as an editor sets them: the checks, the limits, the relay."""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

from app.errors import InvalidInput

ADDRESS = re.compile(r"[^@\s<>\",;]+@[^@\s<>\",;]+\.[^@\s<>\",;]+")
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,79}")
# Fields an editor may set; an empty one falls back to the environment's setting.
TEXT_FIELDS = ("name", "tagline", "from_address", "reply_to", "postal_address", "list_id")
LIMITS = {
    "name": 200,
    "tagline": 300,
    "from_address": 320,
    "reply_to": 320,
    "postal_address": 500,
    "list_id": 255,
}


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_field(field: str, value: Any) -> str | None:
    """Return a field's stored form (None: fall back to the setting), or raise InvalidInput."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text.")
    if field in ("from_address", "reply_to") and ("\r" in value or "\n" in value):
        raise InvalidInput(f"{field} cannot contain a line break.")
    if _CONTROL.search(value.replace("\r", "").replace("\n", "").replace("\t", "")):
        # Invisible, and not allowed in XML: one in a name would break the Atom feed.
        raise InvalidInput(f"{field} cannot contain control characters.")
    # Every one of these may reach a header or a one-line footer: no line breaks, ever.
    text = " ".join(value.split())
    if len(text) > LIMITS[field]:
        raise InvalidInput(f"{field} can be at most {LIMITS[field]} characters long.")
    if not text:
        return None
    if field in ("from_address", "reply_to"):
        _name, addr = parseaddr(text)
        # One address, alone or as `Name <address>`: nothing else may ride along.
        if not ADDRESS.fullmatch(addr) or not (text == addr or text.endswith(f"<{addr}>")):
            raise InvalidInput(f"{field} must be an address, e.g. Name <news@example.org>.")
    return text


def clean_slug(slug: Any) -> str:
    """Return a valid slug, or raise InvalidInput."""
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        raise InvalidInput(
            "slug must be 1 to 80 lower-case letters, digits and hyphens, starting with one of "
            "the first two."
        )
    return slug


def clean_relay(value: Any, relays: Sequence[str]) -> str | None:
    """Return a relay name among the configured `relays` (None: the pool), or raise InvalidInput."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value in relays:
        return value
    shown = str(value)[:60]
    if not relays:
        raise InvalidInput(
            f"There is no relay {shown!r}: MORNINGPOST_SMTP_URL names no relay (mail is captured)."
        )
    names = ", ".join(repr(r) for r in relays)
    raise InvalidInput(f"There is no relay {shown!r}; the configured relays are {names}.")


def field_errors(data: dict[str, Any]) -> dict[str, str]:
    """Return {field: message} for each given field the checks above would refuse."""
    errors: dict[str, str] = {}
    for field in TEXT_FIELDS:
        if field in data:
            try:
                clean_field(field, data[field])
            except InvalidInput as exc:
                errors[field] = exc.message
    if "slug" in data:
        try:
            clean_slug(data["slug"])
        except InvalidInput as exc:
            errors["slug"] = exc.message
    return errors
