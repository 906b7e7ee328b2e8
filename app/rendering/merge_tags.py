"""Merge tags: `{{ name }}` and `{{ attr.company | "friend" }}` in an issue's block text.

An issue is rendered once with a stand-in per distinct tag (letters only, like the list-token
placeholders, so Markdown, HTML inlining and quoted-printable leave it alone); each reader's
value is filled into the prepared bytes (app.sends.compose), escaped for the HTML part and
plain in the text part. A value a reader lacks (no name, no such attribute, blank) falls back
to the tag's default, and a tag without a default then becomes empty.

Tags go in text, never in a link's address (a click link is signed once per issue) nor in the
subject or preheader (header-safe per-reader subjects are not supported).

`{{ newsletter }}` is the one tag that is not the reader's: the name of the issue's newsletter,
filled when the issue is rendered (in the subject and preheader too).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

MAX_TAGS = 50  # distinct tags per issue
MAX_DEFAULT = 200
# A key: `name`, or `attr.` and an attribute name (app.audience.attributes' pattern).
_KEY = r"name|newsletter|attr\.[A-Za-z_][A-Za-z0-9_]{0,63}"
NEWSLETTER = "newsletter"
# The newsletter's name in rendered HTML and text until the render fills it (letters only).
NEWSLETTER_STAND_IN = "MPXNEWSLETTERNAMEX"
_NEWSLETTER_TAG = re.compile(r"\{\{\s*newsletter\s*\}\}")
_TAG = re.compile(rf'\s*({_KEY})\s*(?:\|\s*"([^"\\\r\n]{{0,{MAX_DEFAULT}}})"\s*)?')
# Fields whose text is a link address: a tag there is refused.
URL_FIELDS = frozenset({"url", "link"})
# Stand-ins: "MPXMERGE", the part (H: HTML, T: text), two letters of the tag's index, "X".
PREFIX = "MPXMERGE"
HTML, TEXT = "H", "T"
PLACEHOLDER_LENGTH = len(PREFIX) + 4
_SPACES = re.compile(r"[\s\x00-\x1f\x7f]+")


class MergeTagError(ValueError):
    """A malformed or unknown tag; `line` counts from 1 within its field."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class MergeTag:
    """One tag: what it reads (`name` or `attr.<x>`) and what it shows when that is missing."""

    key: str
    default: str | None = None

    @property
    def attribute(self) -> str | None:
        """Return the attribute name an `attr.` tag reads, else None."""
        return self.key[5:] if self.key.startswith("attr.") else None

    def source(self) -> str:
        """Return the tag as an editor writes it."""
        default = f' | "{self.default}"' if self.default is not None else ""
        return "{{ " + self.key + default + " }}"


def scan(text: str) -> Iterator[tuple[int, int, MergeTag]]:
    """Yield (start, end, tag) for every tag in text; MergeTagError on a malformed one."""
    pos = text.find("{{")
    while pos != -1:
        line = text.count("\n", 0, pos) + 1
        end = text.find("}}", pos + 2)
        nested = text.find("{{", pos + 2)
        if end == -1 or (nested != -1 and nested < end):
            raise MergeTagError(
                'unclosed merge tag "{{" (end it with "}}"; write {\\{ for a literal {{)', line
            )
        inner = text[pos + 2 : end]
        found = _TAG.fullmatch(inner)
        if found is None:
            shown = " ".join(inner.split())[:60]
            raise MergeTagError(
                f'unknown merge tag "{{{{ {shown} }}}}": use {{{{ name }}}} or '
                '{{ attr.<name> }}, with an optional default: {{ name | "there" }}',
                line,
            )
        yield pos, end + 2, MergeTag(found[1], found[2])
        pos = text.find("{{", end + 2)


def has_tag(text: str) -> bool:
    """Tell whether text holds a well-formed merge tag (malformed `{{` counts as text here)."""
    try:
        return next(scan(text), None) is not None
    except MergeTagError:
        return False


def has_reader_tag(text: str) -> bool:
    """Tell whether text holds a tag of the reader's own (any but `{{ newsletter }}`)."""
    try:
        return any(tag.key != NEWSLETTER for _, _, tag in scan(text))
    except MergeTagError:
        return False


def fill_newsletter(text: str, name: str) -> str:
    """Return text (a subject, a preheader) with `{{ newsletter }}` replaced by the name."""
    return _NEWSLETTER_TAG.sub(lambda _: name, text) if "{{" in text else text


def placeholder(index: int, part: str) -> str:
    """Return the stand-in of tag number `index` in one part (HTML or TEXT)."""
    return f"{PREFIX}{part}{chr(65 + index // 26)}{chr(65 + index % 26)}X"


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "type":
                yield from _walk(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


def text_fields(block: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield (field path, text) of every string field of a block but its type."""
    return _walk(block, "")


def is_url_field(path: str) -> bool:
    """Tell whether a field path (as field_tags gives it) is a link address."""
    return path.rsplit(".", 1)[-1] in URL_FIELDS


class Substitution:
    """Replace tags in blocks with stand-ins, numbering distinct tags in order of first use."""

    def __init__(self) -> None:
        self.tags: list[MergeTag] = []

    def blocks(self, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Return copies of the blocks with tags replaced (blocks without `{{` untouched)."""
        return [self._value(b, "") for b in blocks]

    def _value(self, value: Any, key: str) -> Any:
        if isinstance(value, str):
            return value if key in URL_FIELDS or "{{" not in value else self.text(value)
        if isinstance(value, dict):
            return {k: v if k == "type" else self._value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self._value(v, key) for v in value]
        return value

    def text(self, text: str) -> str:
        """Return text with its tags replaced (a malformed `{{` left as written)."""
        try:
            found = list(scan(text))
        except MergeTagError:
            return text  # saved before tags were checked: shown as it was written
        out, cursor = [], 0
        for start, end, tag in found:
            if tag.key == NEWSLETTER:  # the same for every reader: filled at render time
                out += [text[cursor:start], NEWSLETTER_STAND_IN]
                cursor = end
                continue
            if tag not in self.tags:
                if len(self.tags) >= MAX_TAGS:
                    continue
                self.tags.append(tag)
            out += [text[cursor:start], placeholder(self.tags.index(tag), HTML)]
            cursor = end
        out.append(text[cursor:])
        return "".join(out)


def show_defaults(text: str) -> str:
    """Return source text with its tags replaced by their defaults (excerpts, feed entries)."""
    if "{{" not in text:
        return text
    try:
        found = list(scan(text))
    except MergeTagError:
        return text
    out, cursor = [], 0
    for start, end, tag in found:
        out += [text[cursor:start], tag.default or ""]
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def as_text_part(text: str) -> str:
    """Turn the HTML stand-ins in a rendered text part into the text part's own."""
    return text.replace(PREFIX + HTML, PREFIX + TEXT)


def display(value: object) -> str:
    """Return a stored value as a reader sees it: one line, numbers and booleans as written."""
    if isinstance(value, str) and value.isprintable():
        return value.strip()  # the usual case: no line break or control character to fold
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _SPACES.sub(" ", str(value)).strip()


def reader_value(tag: MergeTag, name: str | None, attributes: Mapping[str, Any] | None) -> str:
    """Return what `tag` shows for a reader: their value, else the default, else nothing."""
    attr = tag.attribute
    raw = (attributes or {}).get(attr) if attr is not None else name
    shown = display(raw)
    return shown if shown else (tag.default or "")


def fill_defaults(text: str, tags: Sequence[MergeTag], *, html: bool) -> str:
    """Return text with every stand-in replaced by its default (pages, previews, checks)."""
    if PREFIX not in text:
        return text
    for i, tag in enumerate(tags):
        value = reader_value(tag, None, None)
        for part in (HTML, TEXT):
            text = text.replace(placeholder(i, part), escape(value) if html else value)
    return text
