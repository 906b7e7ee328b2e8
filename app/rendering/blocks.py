"""Issue content blocks: one pydantic model per type, validated into plain dicts."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from app.errors import InvalidInput
from app.rendering import merge_tags, placeholders
from app.rendering.markdown import markdown_parser

MAX_BLOCKS = 100
MAX_ITEMS = 50
ALLOWED_SCHEMES = ("http://", "https://", "mailto:")

_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _line(value: str) -> str:
    # Titles and labels are one line: CR/LF and runs of spaces collapse to one space.
    value = _SPACES.sub(" ", _CONTROL.sub("", value)).strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _text(value: str) -> str:
    # Bodies keep their line breaks (Markdown needs them); CRLF becomes LF.
    value = _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _url(value: str) -> str:
    value = value.strip()
    if not value.lower().startswith(ALLOWED_SCHEMES):
        raise ValueError("must be an http(s) or mailto: URL")
    if _SPACES.search(value) or _CONTROL.search(value) or '"' in value or "<" in value:
        raise ValueError("must not contain spaces, quotes or control characters")
    return value


def _alt(value: str) -> str:
    # One line; may be empty so a draft saves, and the pre-send check then refuses to send it.
    return _SPACES.sub(" ", _CONTROL.sub("", value)).strip()


def _image_url(value: str) -> str:
    value = _url(value)
    if not value.lower().startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL of an image")
    return value


Line = Annotated[str, Field(max_length=300), AfterValidator(_line)]
Text = Annotated[str, Field(max_length=20_000), AfterValidator(_text)]
Url = Annotated[str, Field(max_length=900), AfterValidator(_url)]
Alt = Annotated[str, Field(max_length=500), AfterValidator(_alt)]
ImageUrl = Annotated[str, Field(max_length=900), AfterValidator(_image_url)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Stat(_Model):
    value: Line
    label: Line


class Card(_Model):
    title: Line
    description: Text
    url: Url | None = None


class LinkItem(_Model):
    title: Line
    description: Text | None = None
    url: Url | None = None


class OpinionPiece(_Model):
    title: Line
    body: Text


class TrendingItem(_Model):
    title: Line
    description: Text | None = None
    url: Url | None = None
    metric: Line | None = None


class TrendingGroup(_Model):
    source: Line
    label: Line | None = None
    items: Annotated[list[TrendingItem], Field(min_length=1, max_length=MAX_ITEMS)]


class Mover(_Model):
    name: Line
    change: Line
    note: Text | None = None
    url: Url | None = None


class Masthead(_Model):
    type: Literal["masthead"]
    date: Line | None = None


class Lead(_Model):
    type: Literal["lead"]
    kicker: Line | None = None
    title: Line
    summary: Text | None = None
    body: Text


class Article(_Model):
    type: Literal["article"]
    kicker: Line | None = None
    title: Line
    body: Text


class Stats(_Model):
    type: Literal["stats"]
    title: Line
    items: Annotated[list[Stat], Field(min_length=1, max_length=8)]


class Cards(_Model):
    type: Literal["cards"]
    title: Line
    intro: Text | None = None
    items: Annotated[list[Card], Field(min_length=1, max_length=MAX_ITEMS)]


class Links(_Model):
    type: Literal["links"]
    title: Line
    intro: Text | None = None
    items: Annotated[list[LinkItem], Field(min_length=1, max_length=MAX_ITEMS)]


class Opinion(_Model):
    type: Literal["opinion"]
    title: Line = "Opinion & Analysis"
    items: Annotated[list[OpinionPiece], Field(min_length=1, max_length=MAX_ITEMS)]


class Trending(_Model):
    type: Literal["trending"]
    title: Line
    intro: Text | None = None
    groups: Annotated[list[TrendingGroup], Field(min_length=1, max_length=6)]


class Movers(_Model):
    type: Literal["movers"]
    title: Line
    intro: Text | None = None
    items: Annotated[list[Mover], Field(min_length=1, max_length=MAX_ITEMS)]


class Subscribe(_Model):
    type: Literal["subscribe"]
    title: Line
    body: Text


class MarkdownBlock(_Model):
    type: Literal["markdown"]
    body: Text


class ImageBlock(_Model):
    type: Literal["image"]
    url: ImageUrl
    alt: Alt = ""
    caption: Line | None = None
    link: Url | None = None


_MODELS: dict[str, type[_Model]] = {
    "masthead": Masthead,
    "lead": Lead,
    "article": Article,
    "stats": Stats,
    "cards": Cards,
    "links": Links,
    "opinion": Opinion,
    "trending": Trending,
    "movers": Movers,
    "subscribe": Subscribe,
    "markdown": MarkdownBlock,
    "image": ImageBlock,
}

BLOCK_TYPES: tuple[str, ...] = tuple(_MODELS)


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(err: ErrorDetails) -> str:
    where = _where(tuple(err["loc"]))
    kind = err["type"]
    if kind == "missing":
        return f"{where} is required"
    if kind == "extra_forbidden":
        return f"{where} is not a field of this block type"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def _contains_placeholder(value: object) -> bool:
    if isinstance(value, str):
        return merge_tags.PREFIX in value or any(p in value for p in placeholders.ALL)
    if isinstance(value, dict):
        return any(_contains_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_placeholder(v) for v in value)
    return False


def parse_blocks(raw: object) -> list[dict[str, Any]]:
    """Validate an issue's blocks and return them as normalised dicts (numbering from 1)."""
    if not isinstance(raw, list):
        raise InvalidInput("blocks must be a list")
    if not raw:
        raise InvalidInput("an issue needs at least one block")
    if len(raw) > MAX_BLOCKS:
        raise InvalidInput(f"an issue has at most {MAX_BLOCKS} blocks")
    result: list[dict[str, Any]] = []
    tags: list[merge_tags.MergeTag] = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise InvalidInput(f"block {number}: must be an object with a 'type'")
        kind = item.get("type")
        if not isinstance(kind, str) or not kind:
            raise InvalidInput(f"block {number}: type is required")
        model = _MODELS.get(kind)
        if model is None:
            raise InvalidInput(
                f"block {number}: unknown type {kind!r} (one of {', '.join(BLOCK_TYPES)})"
            )
        try:
            parsed = model.model_validate(item)
        except ValidationError as exc:
            raise InvalidInput(f"block {number} ({kind}): {_describe(exc.errors()[0])}") from None
        data = parsed.model_dump()
        # The per-subscriber fill replaces these stand-ins; one in content would leak a token.
        if _contains_placeholder(data):
            raise InvalidInput(f"block {number} ({kind}): contains a reserved placeholder")
        for tag in _check_tags(data, f"block {number} ({kind})"):
            if tag not in tags:
                tags.append(tag)
        result.append(data)
    if len(tags) > merge_tags.MAX_TAGS:
        raise InvalidInput(f"an issue uses at most {merge_tags.MAX_TAGS} different merge tags")
    return result


# A stand-in that Markdown put inside a link's or an image's address.
_IN_ADDRESS = re.compile(r'(?:href|src)="[^"]*' + merge_tags.PREFIX)


def _check_tags(block: dict[str, Any], where: str) -> list[merge_tags.MergeTag]:
    """Return a block's merge tags; InvalidInput naming the field and line of a bad one."""
    found: list[merge_tags.MergeTag] = []
    for path, text in merge_tags.text_fields(block):
        if "{{" not in text:
            continue
        try:
            tags = [tag for _, _, tag in merge_tags.scan(text)]
        except merge_tags.MergeTagError as exc:
            raise InvalidInput(f"{where}: {path}, line {exc.line}: {exc}") from None
        if tags and merge_tags.is_url_field(path):
            raise InvalidInput(f"{where}: {path}: a merge tag cannot go in a link address")
        if tags:
            # Click links are signed once per issue: a reader's value cannot go in an address.
            html = _MD.render(merge_tags.Substitution().text(text))
            if _IN_ADDRESS.search(html):
                raise InvalidInput(
                    f"{where}: {path}: a merge tag cannot go in a link or image address"
                )
        found += tags
    return found


_MD = markdown_parser()
