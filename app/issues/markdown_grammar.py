"""The Markdown issue grammar's shared parts: block kinds, field names, line patterns."""

from __future__ import annotations

import re
from typing import Any, Protocol

from app.errors import InvalidInput

FRONT_MATTER_KEYS = ("subject", "preheader", "slug", "date")

# Field lines each block type accepts right under its heading.
FIELDS: dict[str, tuple[str, ...]] = {
    "masthead": ("date",),
    "lead": ("kicker", "summary"),
    "article": ("kicker",),
    "cards": ("intro",),
    "links": ("intro",),
    "trending": ("intro",),
    "movers": ("intro",),
    "image": ("link", "alt", "url"),
}
UNTITLED = ("masthead", "markdown")
BODY_TYPES = ("lead", "article", "subscribe", "markdown")
LIST_TYPES = ("stats", "cards", "links", "movers")

# Matched against lines without trailing blanks (see _rs): a lazy `.*?` before `[ \t]*$` would
# take quadratic time on a long run of spaces.
_HEADING = re.compile(r"^##(?:[ \t]+(?P<text>.*))?$")
_SUBHEADING = re.compile(r"^###(?:[ \t]+(?P<text>.*))?$")
_TYPE_SUFFIX = re.compile(r"(?:^|[ \t])\{(?P<type>[A-Za-z_-]*)\}$")
_FIELD = re.compile(r"^(?P<key>[A-Za-z]+):(?:[ \t]+(?P<value>.*))?$")
_ITEM = re.compile(r"^[-*+][ \t]+(?P<text>.*)$")
_PLAIN_END = re.compile(r"(?<=[ \t])[—–](?=[ \t])")
_PLAIN_END_FIGURE = re.compile(r"(?<=[ \t])(?:\(|[—–](?=[ \t]))")
_ESCAPED = re.compile(r"^ +##")
_NEEDS_ESCAPE = re.compile(r"^ *##")
_LINK = re.compile(r"^\[(?P<title>[^\]]*)\]\((?P<url>\S*?)\)(?=[ \t]|$)")
_BOLD = re.compile(r"^\*\*(?P<title>.+?)\*\*(?=[ \t]|$)")
_METRIC = re.compile(r"^\((?P<metric>[^()]*)\)(?=[ \t]|$)")
_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<url>\S*?)\)$")
_SEPARATOR = re.compile(r"^(?:—|–|--|-|:)(?:[ \t]+|$)")
_LOC = re.compile(r"^(?:groups\[(?P<g>\d+)\](?:\.items\[(?P<gi>\d+)\])?|items\[(?P<i>\d+)\])\.?")

SEP = " — "


class _IssueLike(Protocol):
    # Read-only, so the Issue row (slug: str) and IssueIn (slug: str | None) both fit.
    @property
    def subject(self) -> str: ...
    @property
    def preheader(self) -> str: ...
    @property
    def slug(self) -> str | None: ...
    @property
    def blocks(self) -> list[dict[str, Any]]: ...


def _rs(line: str) -> str:
    return line.rstrip(" \t")


def _fail(line: int, message: str) -> InvalidInput:
    return InvalidInput(f"line {line}: {message}")
