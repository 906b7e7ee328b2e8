"""The block-by-block editor's form: blocks to flat form fields and back.

One form section per block. Scalar fields are inputs; a list of items is a text area with one
item per line and its parts separated by " | " (e.g. `1.5B | parameters`); the nested groups of
a `trending` block are edited as JSON. The result goes through the same validation as the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from app.errors import InvalidInput
from app.issues.markdown_format import to_markdown
from app.rendering.blocks import BLOCK_TYPES

MAX_FORM_BLOCKS = 100
SEP = " | "

# Scalar fields per type: (name, "line" for an input or "text" for a text area).
FIELDS: dict[str, list[tuple[str, str]]] = {
    "masthead": [("date", "line")],
    "lead": [("kicker", "line"), ("title", "line"), ("summary", "text"), ("body", "text")],
    "article": [("kicker", "line"), ("title", "line"), ("body", "text")],
    "stats": [("title", "line")],
    "cards": [("title", "line"), ("intro", "text")],
    "links": [("title", "line"), ("intro", "text")],
    "opinion": [("title", "line")],
    "trending": [("title", "line"), ("intro", "text")],
    "movers": [("title", "line"), ("intro", "text")],
    "subscribe": [("title", "line"), ("body", "text")],
    "markdown": [("body", "text")],
    "image": [("url", "line"), ("alt", "line"), ("caption", "line"), ("link", "line")],
}
# Item lists per type: the key and the parts of one line, in order.
ITEMS: dict[str, tuple[str, list[str]]] = {
    "stats": ("items", ["value", "label"]),
    "cards": ("items", ["title", "description", "url"]),
    "links": ("items", ["title", "description", "url"]),
    "opinion": ("items", ["title", "body"]),
    "movers": ("items", ["name", "change", "note", "url"]),
}
JSON_LISTS: dict[str, str] = {"trending": "groups"}


@dataclass
class BlockForm:
    """One block as the form shows it: its type and every field as text."""

    type: str
    values: dict[str, str] = field(default_factory=dict)
    # Items whose text has line breaks or a "|" cannot be one line each: they are JSON then.
    items_as_json: bool = False

    @property
    def fields(self) -> list[tuple[str, str]]:
        """Return the scalar fields of this type."""
        return FIELDS.get(self.type, [])

    @property
    def items(self) -> tuple[str, list[str]] | None:
        """Return the item list's key and parts, if this type has one."""
        return ITEMS.get(self.type)

    @property
    def json_key(self) -> str | None:
        """Return the key edited as JSON, if any."""
        return JSON_LISTS.get(self.type)


def to_form(block: dict[str, Any]) -> BlockForm:
    """Return the form view of a stored block."""
    kind = str(block.get("type", ""))
    values = {name: str(block.get(name) or "") for name, _ in FIELDS.get(kind, [])}
    as_json = False
    if kind in ITEMS:
        key, parts = ITEMS[kind]
        items = block.get(key) or []
        cells_of = [[str(item.get(p) or "") for p in parts] for item in items]
        if any("\n" in c or "|" in c for cells in cells_of for c in cells):
            as_json = True
            values[key] = json.dumps(items, indent=2, ensure_ascii=False)
        else:
            lines = []
            for cells in cells_of:
                while cells and not cells[-1]:
                    cells.pop()
                lines.append(SEP.join(cells))
            values[key] = "\n".join(lines)
    if kind in JSON_LISTS:
        key = JSON_LISTS[kind]
        values[key] = json.dumps(block.get(key) or [], indent=2, ensure_ascii=False)
    return BlockForm(kind, values, as_json)


def _json(form: BlockForm, key: str, number: int) -> Any:
    try:
        return json.loads(form.values.get(key) or "[]")
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"block {number} ({form.type}): {key} is not valid JSON (line {exc.lineno}: {exc.msg})"
        ) from None


def to_block(form: BlockForm, number: int) -> dict[str, Any]:
    """Return the raw block a form section describes (validated later by parse_blocks)."""
    block: dict[str, Any] = {"type": form.type}
    for name, _ in form.fields:
        value = form.values.get(name, "").strip()
        if value:
            block[name] = value
    if form.items and form.items_as_json:
        block[form.items[0]] = _json(form, form.items[0], number)
    elif form.items:
        key, parts = form.items
        items = []
        for line in form.values.get(key, "").splitlines():
            if not line.strip():
                continue
            cells = [c.strip() for c in line.split("|", len(parts) - 1)]
            items.append({p: c for p, c in zip(parts, cells, strict=False) if c})
        block[key] = items
    if form.json_key:
        block[form.json_key] = _json(form, form.json_key, number)
    return block


def read_form(form: FormData) -> list[BlockForm]:
    """Read the posted sections in their new order, without the ones marked for removal."""
    try:
        count = min(int(str(form.get("count") or "0")), MAX_FORM_BLOCKS)
    except ValueError:
        raise InvalidInput("The form is damaged; reload the page.") from None
    placed: list[tuple[float, int, BlockForm]] = []
    for i in range(count):
        kind = str(form.get(f"b{i}-type") or "")
        if kind not in BLOCK_TYPES:
            raise InvalidInput(f"block {i + 1}: unknown type {kind!r}.")
        if form.get(f"b{i}-remove"):
            continue
        section = BlockForm(kind, items_as_json=bool(form.get(f"b{i}-items-json")))
        keys = [n for n, _ in section.fields]
        keys += [section.items[0]] if section.items else []
        keys += [section.json_key] if section.json_key else []
        for key in keys:
            section.values[key] = str(form.get(f"b{i}-{key}") or "")
        try:
            position = float(str(form.get(f"b{i}-pos") or i + 1))
        except ValueError:
            position = float(i + 1)
        placed.append((position, i, section))
    placed.sort(key=lambda p: (p[0], p[1]))  # ties keep the old order
    return [section for _, _, section in placed]


def blank(kind: str) -> BlockForm:
    """Return an empty section of a type, for "Add block"."""
    if kind not in BLOCK_TYPES:
        raise InvalidInput(f"Unknown block type {kind!r}.")
    return to_form({"type": kind})


def as_markdown(form: FormData) -> str | None:
    """Return a posted block form as the issue's Markdown (None if its blocks do not read).

    Text typed block by block that could not be saved (a session ended) is kept this way and
    comes back in the Markdown editor.
    """
    try:
        blocks = [to_block(s, n) for n, s in enumerate(read_form(form), start=1)]
        return to_markdown(
            subject=str(form.get("subject") or "")[:300],
            preheader=str(form.get("preheader") or "")[:300],
            blocks=blocks,
        )
    except (InvalidInput, ValueError):
        return None
