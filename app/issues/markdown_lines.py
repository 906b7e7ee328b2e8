"""A Markdown issue as the reader holds it: numbered lines, blocks in the making, quoting."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.issues.markdown_grammar import _ESCAPED, _TYPE_SUFFIX, _fail
from app.rendering.blocks import BLOCK_TYPES


@dataclass
class _Src:
    """Lines of one block (or part of one), each with its line number in the file."""

    lines: list[tuple[int, str]]


@dataclass
class _Block:
    kind: str
    line: int
    data: dict[str, Any]
    # Line of each item / group, for error messages: ("items", 0) -> 14, ("groups", 1, 2) -> 30.
    where: dict[tuple[Any, ...], int] = field(default_factory=dict)


def _unquote(value: str) -> str:
    """Read a value that is a JSON string literal ("…") as that string; anything else as is."""
    if value.startswith('"'):
        try:
            decoded, end = json.JSONDecoder().raw_decode(value)
        except ValueError:
            return value
        if isinstance(decoded, str) and not value[end:].strip():
            return decoded
    return value


def _unescape(text: str) -> str:
    return text[1:] if _ESCAPED.match(text) else text


def _join(lines: Sequence[tuple[int, str]]) -> str:
    return "\n".join(_unescape(text) for _, text in lines).strip("\n")


def _split_heading(text: str, line: int) -> tuple[str, str]:
    """Return (title, type) of a `## Title {type}` heading."""
    match = _TYPE_SUFFIX.search(text)
    if match is None:
        return _unquote(text.strip()), "article"
    kind = match["type"]
    if kind not in BLOCK_TYPES:
        raise _fail(line, f"unknown block type {{{kind}}} (one of {', '.join(BLOCK_TYPES)})")
    return _unquote(text[: match.start()].strip()), kind
