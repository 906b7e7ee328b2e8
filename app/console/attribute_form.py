"""Read an attribute typed into the console's form: the text and the type the editor chose."""

from __future__ import annotations

import re

from app.audience.attributes import Value
from app.errors import InvalidInput

KINDS = ("string", "number", "boolean")
INTEGER = re.compile(r"[+-]?\d{1,20}")


def typed_value(name: str, kind: str, text: str) -> Value:
    """Return the value as the API would receive it in JSON; its bounds are checked there."""
    if kind == "string":
        return text
    if kind == "boolean":
        word = text.strip().lower()
        if word not in ("true", "false"):
            raise InvalidInput(f"attributes.{name}: a boolean is true or false.")
        return word == "true"
    if kind == "number":
        raw = text.strip()
        if INTEGER.fullmatch(raw):
            return int(raw)
        try:
            return float(raw)
        except ValueError:
            raise InvalidInput(f"attributes.{name}: {raw[:40]!r} is not a number.") from None
    raise InvalidInput("Choose string, number or boolean.")


def kind_of(value: object) -> str:
    """Return the type a stored value shows as."""
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else "string"
