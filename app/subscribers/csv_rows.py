"""Reading an import CSV: lines as UTF-8 text, the header's columns, each row's cells."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, cast

from app.audience import csv_columns
from app.csvsafe import restore
from app.errors import InvalidInput
from app.models import SubscriberStatus


@dataclass
class Row:
    """One data row of the file, checked and cleaned, with the line it starts on."""

    number: int
    raw_email: str
    email: str
    name: str
    timezone: str | None  # None: the cell was empty or there is no such column
    left: SubscriberStatus | None = None  # a `status` cell saying the reader left
    tags: list[str] = field(default_factory=list)
    newsletters: list[int] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def audience(self) -> bool:
        """Tell whether the row carries tags, newsletters or attributes."""
        return bool(self.tags or self.newsletters or self.attributes)


def _lines(file: IO[bytes] | IO[str]) -> Iterator[str]:
    """Yield the file's lines as text; a byte that is not UTF-8 or a NUL names its own line."""
    binary = isinstance(file.read(0), bytes)
    for number, raw in enumerate(file, start=1):
        if binary:
            try:
                # Decoded line by line, not in read-ahead blocks, so an error names its line.
                line = cast(bytes, raw).decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"Line {number}: the file is not UTF-8 text; save it as CSV UTF-8."
                ) from None
        else:
            line = cast(str, raw)
        if "\x00" in line:
            raise InvalidInput(
                f"Line {number}: the file contains a NUL byte; it is not a text CSV file."
            )
        yield line


def _records(file: IO[bytes] | IO[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield (line the record starts on, cells); line 1 is the header, as in a spreadsheet."""
    reader = csv.reader(_lines(file))
    start = 1
    try:
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidInput(f"Line {start}: the CSV cannot be read ({exc}).") from None


@dataclass(frozen=True)
class Columns:
    """Where each known column is in the file's rows (None: the header has no such column)."""

    email: int
    name: int | None
    timezone: int | None
    tags: int | None = None
    newsletters: int | None = None
    attributes: dict[str, int] = field(default_factory=dict)  # attribute name: column
    status: int | None = None


# A `status` cell (as the export writes it): these import as readers; the rest as having left.
_STAYING = ("", SubscriberStatus.active, SubscriberStatus.pending)
_LEFT = (SubscriberStatus.unsubscribed, SubscriberStatus.bounced, SubscriberStatus.complained)


def left_status(cell: str) -> SubscriberStatus | None:
    """Read a `status` cell: None for a reader to import, else how they left; else refuse."""
    value = cell.strip().lower()
    if value in _STAYING:
        return None
    for status in _LEFT:
        if value == status:
            return status
    raise InvalidInput(
        f"status {cell.strip()[:40]!r} is not one of active, pending, " + ", ".join(_LEFT)
    )


def cell(cells: list[str], col: int | None) -> str:
    """Return the text of column `col` of a row ("" when the row is short or there is none)."""
    # restore: a file we exported carries '= for =, and imports again as it was.
    return restore(cells[col]) if col is not None and col < len(cells) else ""


def read_header(file: IO[bytes] | IO[str]) -> tuple[Iterator[tuple[int, list[str]]], Columns]:
    """Read the header row; return the remaining records and where each known column is."""
    records = _records(file)
    try:
        _, first = next(records)
    except StopIteration:
        raise InvalidInput("The file is empty; it needs a header row `email,name`.") from None
    # A BOM survives when a text stream was handed in; strip it here as well.
    columns = [c.strip().lstrip(codecs.BOM_UTF8.decode()).lower() for c in first]
    if "email" not in columns:
        raise InvalidInput("The first row must be a header naming the columns, e.g. `email,name`.")

    def col(name: str) -> int | None:
        return columns.index(name) if name in columns else None

    # Attribute names keep their case (`attr.Plan` is not `attr.plan`).
    attributes: dict[str, int] = {}
    for index, header in enumerate(first):
        name = csv_columns.attribute_column(header.strip().lstrip(codecs.BOM_UTF8.decode()))
        if name is not None:
            attributes.setdefault(name, index)
    return records, Columns(
        columns.index("email"),
        col("name"),
        col("timezone"),
        col("tags"),
        col("newsletters"),
        attributes,
        col("status"),
    )


def audience_of(cells: list[str], cols: Columns, slugs: dict[str, int]) -> dict[str, Any]:
    """Return a row's tags, newsletters and attributes, or raise InvalidInput saying why."""
    found: dict[str, Any] = {}
    if cols.tags is not None:
        found["tags"] = csv_columns.parse_tags(cell(cells, cols.tags))
    if cols.newsletters is not None:
        found["newsletters"] = csv_columns.parse_newsletters(cell(cells, cols.newsletters), slugs)
    if cols.attributes:
        found["attributes"] = csv_columns.parse_attributes(
            {name: cell(cells, i) for name, i in cols.attributes.items()}
        )
    return found
