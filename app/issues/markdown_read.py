"""Read an issue written in Markdown (the grammar in app.issues.markdown_format) into an IssueIn."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from app.errors import InvalidInput
from app.issues.markdown_grammar import (
    _BOLD,
    _ESCAPED,
    _FIELD,
    _HEADING,
    _IMAGE,
    _ITEM,
    _LINK,
    _LOC,
    _METRIC,
    _PLAIN_END,
    _PLAIN_END_FIGURE,
    _SEPARATOR,
    _SUBHEADING,
    _TYPE_SUFFIX,
    BODY_TYPES,
    FIELDS,
    FRONT_MATTER_KEYS,
    LIST_TYPES,
    UNTITLED,
    _fail,
    _rs,
)
from app.issues.schemas import IssueIn
from app.rendering.blocks import BLOCK_TYPES, MAX_BLOCKS, parse_blocks

# A merge-tag error inside a body (app.rendering.blocks): "body, line 3: …".
_BODY_LINE = re.compile(r"^body, line (?P<n>\d+): (?P<rest>.*)$", re.S)


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


# subject, preheader, slug and date, with room for comments and folded lines.
FRONT_MATTER_MAX_LINES = 30
FRONT_MATTER_MAX_CHARS = 4096


def _front_matter(lines: list[str]) -> tuple[dict[str, str], dict[str, int], int]:
    """Return (values, line of each key, index of the first line after the front matter)."""
    first = lines[0].lstrip("\ufeff").rstrip() if lines else ""
    if first != "---":
        raise _fail(
            1,
            "a Markdown issue starts with YAML front matter: a line '---', "
            "'subject: …', then '---' again",
        )
    # Bounded before YAML reads it: a handful of short keys is all the front matter holds.
    last = min(len(lines), FRONT_MATTER_MAX_LINES + 2)
    end = next((i for i in range(1, last) if lines[i].rstrip() in ("---", "...")), None)
    if end is None and last < len(lines):
        raise _fail(
            FRONT_MATTER_MAX_LINES + 2,
            f"the front matter is longer than {FRONT_MATTER_MAX_LINES} lines "
            "(or never closed by '---')",
        )
    if end is None:
        raise _fail(1, "the front matter opened by '---' is never closed by another '---'")
    source = "\n".join(lines[1:end])
    if len(source) > FRONT_MATTER_MAX_CHARS:
        raise _fail(2, f"the front matter is longer than {FRONT_MATTER_MAX_CHARS} characters")
    try:
        # BaseLoader keeps every value a string: safe_load would turn `date: 2026-03-03` into a
        # date and `subject: Yes` into True. It builds no objects, so it is as safe.
        raw = yaml.load(source, Loader=yaml.BaseLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = mark.line + 2 if mark is not None else 2
        problem = getattr(exc, "problem", None) or str(exc)
        raise _fail(at, f"the front matter is not valid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _fail(2, "the front matter must be 'key: value' lines (subject, preheader, …)")
    where: dict[str, int] = {}
    for number in range(1, end):
        key = lines[number].split(":", 1)[0].strip()
        if key in raw and key not in where:
            where[key] = number + 1
    values: dict[str, str] = {}
    for key, value in raw.items():
        at = where.get(key, 2)
        if key not in FRONT_MATTER_KEYS:
            raise _fail(
                at, f"unknown front matter key {key!r} (one of {', '.join(FRONT_MATTER_KEYS)})"
            )
        if not isinstance(value, str):
            raise _fail(at, f"{key} must be a single value, not a list or a mapping")
        values[key] = value
    if not values.get("subject", "").strip():
        raise _fail(
            end + 1 if "subject" not in where else where["subject"],
            "the front matter needs a subject: line",
        )
    return values, where, end + 1


def _fields(kind: str, src: _Src) -> tuple[dict[str, str], _Src]:
    """Take the field lines right under the heading; return them and the remaining lines."""
    allowed = FIELDS.get(kind, ())
    values: dict[str, str] = {}
    rest = src.lines
    while rest:
        number, text = rest[0]
        match = _FIELD.match(_rs(text))
        if match is None or match["key"].lower() not in allowed:
            break
        key = match["key"].lower()
        if key in values:
            raise _fail(number, f"{match['key']}: is given twice")
        values[key] = _unquote(match["value"] or "")
        rest = rest[1:]
    return values, _Src(rest)


def _split_items(
    kind: str, src: _Src, intro_allowed: bool
) -> tuple[str, list[tuple[int, str, list[str]]]]:
    """Split lines into an intro paragraph and list items (line, text, continuation lines)."""
    intro: list[tuple[int, str]] = []
    items: list[tuple[int, str, list[str]]] = []
    for number, text in src.lines:
        item = _ITEM.match(_rs(text))
        if item is not None:
            items.append((number, item["text"], []))
        elif not text.strip():
            if not items:
                intro.append((number, text))  # a blank line between intro paragraphs
        elif items and text[:1] in (" ", "\t"):
            items[-1][2].append(text.strip())
        elif items:
            raise _fail(
                number,
                f"expected a list item ('- …') in this {kind} block, or a new "
                "'## ' heading; indent a line to continue the item above",
            )
        elif intro_allowed:
            intro.append((number, text))
        else:
            raise _fail(number, f"a {kind} block holds only list items, e.g. {_EXAMPLES[kind]}")
    return _join(intro), items


_EXAMPLES = {
    "stats": "'- **1.5B** parameters'",
    "cards": "'- [Title](https://…) — description'",
    "links": "'- [Title](https://…) — description'",
    "movers": "'- [Name](https://…) (+12%) — note'",
    "trending": "'- [Title](https://…) (metric) — description'",
}

# Item fields per list type: (title key, has a parenthesised figure and its key, text key).
_ITEM_SHAPE: dict[str, tuple[str, str | None, str]] = {
    "stats": ("value", None, "label"),
    "cards": ("title", None, "description"),
    "links": ("title", None, "description"),
    "trending": ("title", "metric", "description"),
    "movers": ("name", "change", "note"),
}


def _parse_item(kind: str, number: int, text: str, more: list[str]) -> dict[str, Any]:
    """Read one list item of a stats, cards, links, trending or movers block."""
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            if more:
                raise _fail(number, "an item written as JSON cannot continue on the next line")
            return obj
    name_key, figure_key, text_key = _ITEM_SHAPE[kind]
    item: dict[str, Any] = {}
    rest = text
    link = _LINK.match(rest) if kind != "stats" else None
    bold = _BOLD.match(rest)
    if link is not None:
        item[name_key], item["url"] = link["title"], link["url"]
        rest = rest[link.end() :]
    elif bold is not None:
        item[name_key] = bold["title"]
        rest = rest[bold.end() :]
    elif kind == "stats":
        raise _fail(number, "a stats item starts with its figure in bold: '- **1.5B** parameters'")
    else:
        # A plain item: the name runs to the first " — " (or to a "(figure)" when the type has one).
        end = (_PLAIN_END_FIGURE if figure_key else _PLAIN_END).search(rest)
        name = rest[: end.start()].rstrip(" \t") if end is not None else rest
        if not name:
            raise _fail(number, f"an empty list item in this {kind} block")
        item[name_key] = name
        rest = rest[len(name) :]
    rest = rest.lstrip(" \t")
    if figure_key is not None:
        figure = _METRIC.match(rest)
        if figure is not None:
            item[figure_key] = figure["metric"]
            rest = rest[figure.end() :].lstrip(" \t")
        elif kind == "movers":
            raise _fail(
                number,
                "a movers item needs its change in parentheses after the name: "
                "'- [Name](https://…) (+12%) — note'",
            )
    sep = _SEPARATOR.match(rest)
    if sep is not None:
        rest = rest[sep.end() :]
    body = "\n".join([_unquote(rest), *more]) if rest else "\n".join(more)
    if body.strip():
        item[text_key] = body
    return item


def _parse_list_block(kind: str, src: _Src, data: dict[str, Any], block: _Block) -> None:
    intro, items = _split_items(kind, src, intro_allowed=kind != "stats")
    if intro:
        if "intro" in data:
            raise _fail(src.lines[0][0], "the intro is given twice (as Intro: and as text)")
        data["intro"] = intro
    if not items:
        raise _fail(
            block.line, f"a {kind} block needs at least one list item, e.g. {_EXAMPLES[kind]}"
        )
    data["items"] = []
    for index, (number, text, more) in enumerate(items):
        data["items"].append(_parse_item(kind, number, text, more))
        block.where[("items", index)] = number


def _sections(src: _Src) -> tuple[_Src, list[tuple[int, str, _Src]]]:
    """Split at `### ` sub-headings: (lines before the first, [(line, heading text, lines)])."""
    head: list[tuple[int, str]] = []
    parts: list[tuple[int, str, _Src]] = []
    for number, text in src.lines:
        match = _SUBHEADING.match(_rs(text))
        if match is not None:
            parts.append((number, match["text"] or "", _Src([])))
        elif parts:
            parts[-1][2].lines.append((number, text))
        else:
            head.append((number, text))
    return _Src(head), parts


def _parse_opinion(src: _Src, data: dict[str, Any], block: _Block) -> None:
    head, parts = _sections(src)
    stray = next(((n, t) for n, t in head.lines if t.strip()), None)
    if stray is not None:
        raise _fail(
            stray[0],
            "an opinion block holds '### Piece title' sub-headings, each "
            "with its text below; this text comes before the first one",
        )
    if not parts:
        raise _fail(block.line, "an opinion block needs at least one '### Piece title' with text")
    data["items"] = []
    for index, (number, title, lines) in enumerate(parts):
        body = _join(lines.lines)
        data["items"].append({"title": _unquote(title.strip()), **({"body": body} if body else {})})
        block.where[("items", index)] = number


def _parse_trending(src: _Src, data: dict[str, Any], block: _Block) -> None:
    head, parts = _sections(src)
    if any(_ITEM.match(_rs(t)) for _, t in head.lines):
        number = next(n for n, t in head.lines if _ITEM.match(_rs(t)))
        raise _fail(number, "trending items go under a '### Source — Label' group heading")
    intro = _join(head.lines)
    if intro:
        if "intro" in data:
            raise _fail(head.lines[0][0], "the intro is given twice (as Intro: and as text)")
        data["intro"] = intro
    if not parts:
        raise _fail(
            block.line,
            "a trending block needs at least one '### Source — Label' group "
            "with items such as '- [Title](https://…) (metric) — description'",
        )
    data["groups"] = []
    for g, (number, heading, lines) in enumerate(parts):
        group: dict[str, Any] = _group_heading(heading)
        block.where[("groups", g)] = number
        _, items = _split_items("trending", lines, intro_allowed=False)
        if not items:
            raise _fail(
                number, "this trending group needs at least one item, e.g. " + _EXAMPLES["trending"]
            )
        group["items"] = []
        for i, (item_line, text, more) in enumerate(items):
            group["items"].append(_parse_item("trending", item_line, text, more))
            block.where[("groups", g, i)] = item_line
        data["groups"].append(group)


def _group_heading(text: str) -> dict[str, Any]:
    text = text.strip()
    if text.startswith('"'):
        try:
            source, end = json.JSONDecoder().raw_decode(text)
        except ValueError:
            source, end = None, 0
        if isinstance(source, str):
            rest = text[end:].lstrip(" \t")
            dash = _SEPARATOR.match(rest)
            label = _unquote(rest[dash.end() :]) if dash else rest
            return {"source": source, **({"label": label} if label else {})}
    for sep in (" — ", " – "):
        if sep in text:
            source, label = text.split(sep, 1)
            return {"source": source, "label": _unquote(label.strip())}
    return {"source": text}


def _parse_image(src: _Src, data: dict[str, Any], block: _Block) -> None:
    """Read the `![Alt](url)` line of an image block (the only text it holds)."""
    for number, text in src.lines:
        if not text.strip():
            continue
        match = _IMAGE.match(text.strip())
        if match is None or "url" in data:
            raise _fail(
                number,
                "an image block holds one image line, e.g. '![What it shows](https://…/a.jpg)'",
            )
        data["alt"], data["url"] = match["alt"], match["url"]
    if "url" not in data:
        raise _fail(block.line, "an image block needs its image: '![What it shows](https://…)'")


def _parse_block(kind: str, title: str, line: int, src: _Src) -> _Block:
    block = _Block(kind, line, {"type": kind})
    data = block.data
    if kind == "image":
        if title:
            data["caption"] = title
    elif kind in UNTITLED:
        if title:
            raise _fail(line, f"a {kind} block has no title: write '## {{{kind}}}'")
    elif title:
        data["title"] = title
    values, rest = _fields(kind, src)
    data.update(values)
    if kind == "masthead":
        stray = next(((n, t) for n, t in rest.lines if t.strip()), None)
        if stray is not None:
            raise _fail(stray[0], "a masthead block holds only a 'Date: …' line")
    elif kind in BODY_TYPES:
        body = _join(rest.lines)
        if body:
            data["body"] = body
            # Where the body's first line is: a merge-tag error names a line within the body.
            block.where[("body",)] = next(n for n, text in rest.lines if _unescape(text))
    elif kind in LIST_TYPES:
        _parse_list_block(kind, rest, data, block)
    elif kind == "image":
        _parse_image(rest, data, block)
    elif kind == "opinion":
        _parse_opinion(rest, data, block)
    elif kind == "trending":
        _parse_trending(rest, data, block)
    return block


def _validate(block: _Block) -> dict[str, Any]:
    """Validate one block with the blocks' own models; point errors at the right line."""
    try:
        return parse_blocks([block.data])[0]
    except InvalidInput as exc:
        detail = re.sub(r"^block 1 \([^)]*\): ", "", exc.message)
    loc = _LOC.match(detail)
    line, what = block.line, f"{block.kind} block"
    in_body = _BODY_LINE.match(detail)
    if in_body is not None and ("body",) in block.where:
        line = block.where[("body",)] + int(in_body["n"]) - 1
        detail = in_body["rest"]
    if loc is not None:
        if loc["i"] is not None:
            line, what = block.where.get(("items", int(loc["i"])), line), f"{block.kind} item"
        elif loc["gi"] is not None:
            key = ("groups", int(loc["g"]), int(loc["gi"]))
            line, what = block.where.get(key, line), "trending item"
        else:
            line, what = block.where.get(("groups", int(loc["g"])), line), "trending group"
        detail = detail[loc.end() :].lstrip(": ") or detail
    if detail in ("title is required", "body is required"):
        hint = {
            "title is required": "write it before {" + block.kind + "} in the heading",
            "body is required": "write the text below the heading",
        }[detail]
        detail = f"{detail} ({hint})"
    raise _fail(line, f"{what}: {detail}")


def parse_issue_markdown(text: str) -> IssueIn:
    """Read an issue written in Markdown; a malformed file raises InvalidInput naming the line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    meta, meta_lines, start = _front_matter(lines)
    raw_blocks: list[tuple[int, str, str, _Src]] = []
    for index in range(start, len(lines)):
        number, line = index + 1, lines[index]
        heading = _HEADING.match(_rs(line))
        if heading is not None:
            title, kind = _split_heading(heading["text"] or "", number)
            raw_blocks.append((number, title, kind, _Src([])))
        elif raw_blocks:
            raw_blocks[-1][3].lines.append((number, line))
        elif line.strip():
            hint = (
                " ('# ' titles are not used: the subject is the title)"
                if line.startswith("# ")
                else ""
            )
            raise _fail(number, "text before the first '## Heading {type}' line" + hint)
    if not raw_blocks and not meta.get("date", "").strip():
        raise _fail(start + 1, "the issue has no blocks: start one with '## Heading {type}'")
    parsed = [_parse_block(kind, title, n, src) for n, title, kind, src in raw_blocks]
    if meta.get("date", "").strip():
        at = meta_lines.get("date", 1)
        parsed.insert(0, _Block("masthead", at, {"type": "masthead", "date": meta["date"]}))
    if len(parsed) > MAX_BLOCKS:
        raise _fail(parsed[MAX_BLOCKS].line, f"an issue has at most {MAX_BLOCKS} blocks")
    blocks = [_validate(block) for block in parsed]
    try:
        return IssueIn(
            subject=meta["subject"],
            preheader=meta.get("preheader", ""),
            slug=meta.get("slug") or None,
            blocks=blocks,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "subject"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise _fail(meta_lines.get(key, 1), f"{key}: {msg}") from None
