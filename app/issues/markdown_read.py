"""Read an issue written in Markdown (the grammar in app.issues.markdown_format) into an IssueIn."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from app.errors import InvalidInput
from app.issues.markdown_front_matter import _front_matter
from app.issues.markdown_grammar import (
    _FIELD,
    _HEADING,
    _IMAGE,
    _LOC,
    BODY_TYPES,
    FIELDS,
    LIST_TYPES,
    UNTITLED,
    _fail,
    _rs,
)
from app.issues.markdown_lines import _Block, _join, _split_heading, _Src, _unescape, _unquote
from app.issues.markdown_lists import _parse_list_block, _parse_opinion, _parse_trending
from app.issues.schemas import IssueIn
from app.rendering.blocks import MAX_BLOCKS, parse_blocks

# A merge-tag error inside a body (app.rendering.blocks): "body, line 3: …".
_BODY_LINE = re.compile(r"^body, line (?P<n>\d+): (?P<rest>.*)$", re.S)


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
