"""Issues written in Markdown, both ways: a Markdown file to an `IssueIn`, an issue to Markdown.

The grammar (also in docs/markdown-issues.md):

    ---
    subject: The Specialization Wave          (required)
    preheader: Small models, big gains
    slug: 2026-03-03-the-specialization-wave
    date: Tuesday, 3 March 2026               (a masthead block showing this date comes first)
    ---
    ## Title {type}

* Every line that starts with `## ` begins a block; `{type}` at the end of the heading names its
  type (`masthead`, `lead`, `article`, `stats`, `cards`, `links`, `opinion`, `trending`, `movers`,
  `subscribe`, `markdown`). A heading without `{type}` is an `article`. `masthead` and
  `markdown` blocks have no title: `## {markdown}`.
* Field lines right under the heading (no blank line in between): `Kicker:` and `Summary:`
  (lead), `Kicker:` (article), `Date:` (masthead), `Intro:` (cards, links, trending, movers).
  A value in double quotes is read as a JSON string, for values with line breaks.
* The rest is the block's text: the body (lead, article, subscribe, markdown), a list (stats),
  an intro paragraph and a list (cards, links, movers), or `### ` sub-headings:
  one per piece of an opinion block (its body below it), one per group of a trending block
  (`### Source — Label`, the group's list below it).
* List items (`- `, `* ` or `+ `):
    stats     `- **1.5B** parameters in OpenMath-Nemotron`
    cards     `- [Title](https://…) — description` or `- **Title** — description`
    links     `- [Title](https://…)`, optionally followed by ` — description`
    trending  `- [Title](https://…) (metric) — description`, metric and description optional
    movers    `- [Name](https://…) (+312%) — note`, the change in parentheses is required
  `**Title**` may replace `[Title](url)` everywhere; lines indented under an item continue its
  description; an item may also be written as a JSON object: `- {"title": "…", "url": "…"}`.
* An image block: `## Caption {image}` (or `## {image}` without a caption), an optional
  `Link: https://…` line, then the image as `![Alt text](https://…/media/….jpg)`. `Alt:` and
  `Url:` field lines may replace the `![…](…)` line (the writer uses them when the alt text
  holds brackets).
* A body line that starts with `##` would start a block: indent it by one space. One leading
  space is removed from every text line that starts with spaces and `##`.

`issue_to_markdown` writes exactly this grammar; `parse_issue_markdown(issue_to_markdown(x))`
gives the same blocks as `x` (each block is checked as it is written, and written in the plainer
quoted form when its readable form would not read back the same).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml
from pydantic import ValidationError

from app.errors import InvalidInput
from app.issues.schemas import IssueIn
from app.rendering.blocks import BLOCK_TYPES, MAX_BLOCKS, parse_blocks

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

# A merge-tag error inside a body (app.rendering.blocks): "body, line 3: …".
_BODY_LINE = re.compile(r"^body, line (?P<n>\d+): (?P<rest>.*)$", re.S)

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


# --------------------------------------------------------------------------- reading


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


# --------------------------------------------------------------------------- writing


def _quoted(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _value(value: str) -> str:
    """A field value as written after `Key: `: plain when it reads back the same, else quoted."""
    if "\n" in value or value != value.strip() or _unquote(value) != value:
        return _quoted(value)
    return value


def _escape(text: str) -> str:
    return "\n".join(" " + ln if _NEEDS_ESCAPE.match(ln) else ln for ln in text.split("\n"))


def _heading(title: str, kind: str) -> str:
    if kind in UNTITLED:
        return f"## {{{kind}}}"
    shown = title if _unquote(title) == title and title == title.strip() else _quoted(title)
    return f"## {shown} {{{kind}}}"


def _item_text(kind: str, item: dict[str, Any], plain: bool) -> str:
    if not plain:
        return json.dumps({k: v for k, v in item.items() if v is not None}, ensure_ascii=False)
    name_key, figure_key, text_key = _ITEM_SHAPE[kind]
    name = item[name_key]
    out = f"[{name}]({item['url']})" if item.get("url") else f"**{name}**"
    if figure_key and item.get(figure_key) is not None:
        out += f" ({item[figure_key]})"
    if item.get(text_key) is not None:
        out += (" " if kind == "stats" else SEP) + _value(item[text_key])
    return out


def _item_line(kind: str, item: dict[str, Any]) -> str:
    # The readable form when it reads back as the same item, else the item as JSON.
    text = _item_text(kind, item, plain=True)
    clean = {k: v for k, v in item.items() if v is not None}
    try:
        same = _parse_item(kind, 0, text, []) == clean and "\n" not in text
    except InvalidInput:
        same = False
    return "- " + (text if same else _item_text(kind, item, plain=False))


def _image_markdown(block: dict[str, Any], safe: bool) -> list[str]:
    caption = block.get("caption") or ""
    out = [_heading(caption, "image") if caption else "## {image}"]
    if block.get("link"):
        out.append(f"Link: {block['link']}")
    if safe:
        return [*out, f"Alt: {_quoted(block['alt'])}", f"Url: {block['url']}"]
    return [*out, "", f"![{block['alt']}]({block['url']})"]


def _block_markdown(block: dict[str, Any], safe: bool) -> list[str]:
    kind = block["type"]
    if kind == "image":
        return _image_markdown(block, safe)
    out = [_heading(block.get("title") or "", kind)]
    fields = [(k, block[k]) for k in FIELDS.get(kind, ()) if block.get(k) is not None]
    if kind in ("cards", "links", "trending", "movers") and not safe:
        fields = [(k, v) for k, v in fields if k != "intro"]  # written as a paragraph instead
    out += [f"{k.capitalize()}: {_value(v)}" for k, v in fields]
    if kind in BODY_TYPES:
        out += ["", _escape(block["body"])]
    elif kind in LIST_TYPES:
        if block.get("intro") is not None and not safe:
            out += ["", _escape(block["intro"])]
        out.append("")
        out += [
            _item_line(kind, i) if not safe else "- " + _item_text(kind, i, False)
            for i in block["items"]
        ]
    elif kind == "opinion":
        for piece in block["items"]:
            title = piece["title"]
            shown = title if _unquote(title) == title else _quoted(title)
            out += ["", f"### {shown}", "", _escape(piece["body"])]
    elif kind == "trending":
        if block.get("intro") is not None and not safe:
            out += ["", _escape(block["intro"])]
        for group in block["groups"]:
            source, label = group["source"], group.get("label")
            plain = _group_heading(source) == {"source": source} and (
                label is None
                or (
                    _unquote(label) == label
                    and _group_heading(f"{source}{SEP}{label}")
                    == {"source": source, "label": label}
                )
            )
            if plain and not safe:
                heading = source if label is None else f"{source}{SEP}{label}"
            else:
                heading = _quoted(source) + ("" if label is None else SEP + _quoted(label))
            out += ["", f"### {heading}", ""]
            out += [
                _item_line("trending", i) if not safe else "- " + _item_text("trending", i, False)
                for i in group["items"]
            ]
    return out


def _reads_back(lines: list[str], block: dict[str, Any]) -> bool:
    lines = "\n".join(lines).split("\n")  # entries may hold several lines (bodies)
    src = _Src([(n, t) for n, t in enumerate(lines[1:], start=2)])
    heading = _HEADING.match(_rs(lines[0]))
    if heading is None:
        return False
    try:
        title, kind = _split_heading(heading["text"] or "", 1)
        return _validate(_parse_block(kind, title, 1, src)) == block
    except InvalidInput:
        return False


def to_markdown(
    *, subject: str, preheader: str = "", slug: str | None = None, blocks: list[dict[str, Any]]
) -> str:
    """Write an issue as Markdown that `parse_issue_markdown` reads back into the same blocks.

    A first masthead block with a date becomes the `date:` of the front matter.
    """
    normalised = parse_blocks(blocks)
    meta: dict[str, str] = {"subject": subject}
    if preheader:
        meta["preheader"] = preheader
    if slug:
        meta["slug"] = slug
    if normalised and normalised[0]["type"] == "masthead" and normalised[0].get("date"):
        meta["date"] = normalised.pop(0)["date"]
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=10_000)
    parts = ["---\n" + front + "---"]
    for block in normalised:
        lines = _block_markdown(block, safe=False)
        if not _reads_back(lines, block):
            lines = _block_markdown(block, safe=True)
        parts.append("\n".join(lines).rstrip("\n"))
    return "\n\n".join(parts) + "\n"


def issue_to_markdown(issue: _IssueLike) -> str:
    """Write an issue (the `Issue` row, an `IssueIn` or an `IssueOut`) as Markdown."""
    return to_markdown(
        subject=issue.subject,
        preheader=issue.preheader or "",
        slug=issue.slug,
        blocks=list(issue.blocks),
    )


__all__ = ("issue_to_markdown", "parse_issue_markdown", "to_markdown")
