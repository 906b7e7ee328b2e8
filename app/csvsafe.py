"""CSV for people: cells a spreadsheet would run as a formula are neutralised, in every column.

Every CSV export writes through `csv_writer`; every CSV import reads cells through `restore`,
so an exported file imports again unchanged (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

# A cell starting with one of these is a formula to Excel, LibreOffice or Google Sheets
# (a tab or CR first is how `=` hides behind whitespace).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


_ESCAPED = (*FORMULA_STARTS, "'")


def neutralise(value: Any) -> str:
    """Return a cell's text, with an apostrophe first when a spreadsheet would evaluate it."""
    text = "" if value is None else str(value)
    # An apostrophe already first is doubled too, so `restore` can tell ours from the text's.
    return "'" + text if text.startswith(_ESCAPED) else text


def restore(cell: str) -> str:
    """Undo `neutralise` on a cell read back from one of our exports."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_ESCAPED) else cell


class SafeWriter:
    """A csv.writer whose rows are neutralised cell by cell."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row, every cell neutralised."""
        self._writer.writerow([neutralise(cell) for cell in row])


def csv_writer(out: IO[str]) -> SafeWriter:
    """Return the writer every CSV export uses."""
    return SafeWriter(out)
