"""Write an issue as Markdown that app.issues.markdown_read reads back into the same blocks."""

from __future__ import annotations

import json
from typing import Any

import yaml

from app.errors import InvalidInput
from app.issues.markdown_grammar import (
    _HEADING,
    _NEEDS_ESCAPE,
    BODY_TYPES,
    FIELDS,
    LIST_TYPES,
    SEP,
    UNTITLED,
    _IssueLike,
    _rs,
)
from app.issues.markdown_lines import _split_heading, _Src, _unquote
from app.issues.markdown_lists import _ITEM_SHAPE, _group_heading, _parse_item
from app.issues.markdown_read import _parse_block, _validate
from app.rendering.blocks import parse_blocks


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
