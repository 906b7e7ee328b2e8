"""Reader attributes: bounded, typed values an editor sets (strings, numbers, booleans)."""

from __future__ import annotations

import math
from typing import Any

from app.audience.filter_sql import ATTRIBUTE_NAME
from app.errors import InvalidInput

MAX_KEYS = 50
MAX_VALUE_BYTES = 1024

Value = str | int | float | bool


def clean_value(name: str, value: object) -> Value:
    """Return an attribute value as stored, or raise InvalidInput."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"attributes.{name}: a number must be finite.")
        if isinstance(value, int) and abs(value) > 2**53:
            raise InvalidInput(f"attributes.{name}: the number is too large.")
        return value
    if isinstance(value, str):
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise InvalidInput(f"attributes.{name}: at most {MAX_VALUE_BYTES} bytes.")
        if "\x00" in value:
            raise InvalidInput(f"attributes.{name}: NUL characters are not allowed.")
        return value
    raise InvalidInput(f"attributes.{name}: use a string, a number, true or false (or null).")


def merge_attributes(current: dict[str, Any], patch: object) -> dict[str, Any]:
    """Return `current` with `patch` applied: null removes a key; sizes are bounded."""
    if not isinstance(patch, dict):
        raise InvalidInput("attributes must be an object of names to values.")
    merged = dict(current or {})
    for name, value in patch.items():
        if not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(name):
            raise InvalidInput(
                f"{str(name)[:80]!r} is not an attribute name: up to 64 letters, digits or _, "
                "not starting with a digit."
            )
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = clean_value(name, value)
    if len(merged) > MAX_KEYS:
        raise InvalidInput(f"A reader can have at most {MAX_KEYS} attributes.")
    return merged
