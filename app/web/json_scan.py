"""A linear, incremental check of a JSON body's shape, fed chunk by chunk as the body arrives.

The check runs on the event loop, so its cost must be linear in the body and small per chunk:
no regular expression that can backtrack (an unterminated string of escaped quotes made the
old one quadratic), no per-byte Python loop. Escape pairs are removed with `bytes.replace`,
strings are stepped over with `bytes.split` on quotes, and only the brackets left outside
strings are walked, and only while there are few enough of them to be a real request.
"""

from __future__ import annotations

MAX_JSON_DEPTH = 32
# A real request (an issue of 50 blocks with 30 items each) has a few thousand of either;
# the bounds keep parsing and validating any accepted body cheap.
MAX_JSON_CONTAINERS = 10_000
MAX_JSON_VALUES = 100_000

DEPTH_MESSAGE = f"The JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels)."
CONTAINERS_MESSAGE = f"The JSON has too many arrays and objects (at most {MAX_JSON_CONTAINERS})."
VALUES_MESSAGE = f"The JSON has too many values (at most {MAX_JSON_VALUES})."

_KEEP = b"[]{},"
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in _KEEP)
_OPEN = frozenset(b"[{")


class JsonShape:
    """Follow one JSON text chunk by chunk: depth, arrays and objects, values (strings skipped)."""

    def __init__(self) -> None:
        self.in_string = False
        self.depth = 0
        self.deepest = 0
        self.brackets = 0
        self.commas = 0
        self._held = b""  # an odd trailing backslash: its escaped character is in the next chunk

    def feed(self, chunk: bytes) -> str | None:
        """Take the next chunk; return why the body is refused, or None while it is fine."""
        data = self._held + chunk
        self._held = b""
        trailing = len(data) - len(data.rstrip(b"\\"))
        if trailing % 2:
            data, self._held = data[:-1], b"\\"
        # Escaped backslashes first (they pair from the left), then escaped quotes: what is
        # left has a quote only where a string opens or closes.
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
        parts = data.split(b'"')
        outside = parts[1::2] if self.in_string else parts[::2]
        if len(parts) % 2 == 0:
            self.in_string = not self.in_string
        structure = b"".join(outside).translate(None, _NOT_STRUCTURE)
        self.commas += structure.count(b",")
        if self.commas > MAX_JSON_VALUES:
            return VALUES_MESSAGE
        brackets = structure.replace(b",", b"")
        self.brackets += len(brackets)
        if self.brackets > 2 * MAX_JSON_CONTAINERS:
            return CONTAINERS_MESSAGE
        for ch in brackets:  # at most 2 × MAX_JSON_CONTAINERS over the whole body
            self.depth += 1 if ch in _OPEN else -1
            if self.depth > self.deepest:
                self.deepest = self.depth
        if self.deepest > MAX_JSON_DEPTH:
            return DEPTH_MESSAGE
        return None


def json_depth(body: bytes) -> int:
    """Return how deeply arrays and objects nest in a JSON text (strings ignored)."""
    shape = JsonShape()
    shape.feed(body)
    return shape.deepest


def has_escaped_nul(body: bytes) -> bool:
    """Tell whether a JSON text holds `\\u0000` (the escape itself, not an escaped backslash)."""
    return b"\\u0000" in body.replace(b"\\\\", b"")
