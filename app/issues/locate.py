"""Where in the issue's Markdown form a block, or a text inside it, is: for the preflight's lines.

The Markdown form is the one GET /issues/{id}/markdown returns and the console's editor shows;
each block starts at a `## ` heading (a first masthead with a date is the front matter's `date:`).
"""

from __future__ import annotations

from typing import Any

from app.errors import InvalidInput
from app.issues.markdown_format import to_markdown


class IssueLines:
    """The Markdown lines of an issue and the line each block starts on (worked out on first
    use: an issue without findings never pays for writing its Markdown)."""

    def __init__(self, subject: str, preheader: str, slug: str | None, blocks: list[Any]) -> None:
        self._args = (subject, preheader, slug, blocks)
        self._lines: list[str] | None = None
        self._starts: list[int] = []  # 1-based line of block n (index n - 1)

    @property
    def lines(self) -> list[str]:
        """Return the issue's Markdown, line by line (empty when the blocks do not validate)."""
        if self._lines is None:
            self._lines = self._index()
        return self._lines

    @property
    def starts(self) -> list[int]:
        """Return the line each block starts on, block 1 first."""
        self.lines  # noqa: B018 - computes both on first use
        return self._starts

    def _index(self) -> list[str]:
        subject, preheader, slug, blocks = self._args
        try:
            text = to_markdown(subject=subject, preheader=preheader, slug=slug, blocks=blocks)
        except (InvalidInput, KeyError, TypeError):
            return []  # blocks that do not validate have no Markdown form: no lines then
        lines = text.split("\n")
        closing = lines.index("---", 1)
        first = blocks[0] if blocks else {}
        if first.get("type") == "masthead" and first.get("date"):
            date_line = next((i for i in range(1, closing) if lines[i].startswith("date:")), 0)
            self._starts.append(date_line + 1)
        for index in range(closing + 1, len(lines)):
            if lines[index].startswith("## "):
                self._starts.append(index + 1)
        return lines

    def block_line(self, block: int | None) -> int | None:
        """Return the line block number `block` (from 1) starts on."""
        if block is None or not 1 <= block <= len(self.starts):
            return None
        return self.starts[block - 1]

    def find(self, block: int | None, needle: str) -> int | None:
        """Return the first line of block `block` holding `needle`, else the block's first line."""
        start = self.block_line(block)
        if start is None or block is None:
            return None
        end = self.starts[block] - 1 if block < len(self.starts) else len(self.lines)
        if needle:
            for number in range(start, end + 1):
                if needle in self.lines[number - 1]:
                    return number
        return start
