"""List-shaped blocks of a Markdown issue: list items, opinion pieces and trending groups."""

from __future__ import annotations

import json
from typing import Any

from app.issues.markdown_grammar import (
    _BOLD,
    _ITEM,
    _LINK,
    _METRIC,
    _PLAIN_END,
    _PLAIN_END_FIGURE,
    _SEPARATOR,
    _SUBHEADING,
    _fail,
    _rs,
)
from app.issues.markdown_lines import _Block, _join, _Src, _unquote


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
