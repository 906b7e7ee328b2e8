"""Tomorrow's edition from today's: the same blocks, the masthead's date one morning on."""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta
from typing import Any

from app.issues.summary import _DATE_FORMATS

_ORDINAL = re.compile(r"(\d)(st|nd|rd|th)\b")
COPY_MARK = " (copy)"


def next_morning(text: str) -> str:
    """Return a masthead date one day later, written the way it was; free text stays as it is."""
    had_ordinal = bool(_ORDINAL.search(text))
    cleaned = _ORDINAL.sub(r"\1", text.strip())
    for fmt in _DATE_FORMATS:
        try:
            day = datetime.strptime(cleaned, fmt).date() + timedelta(days=1)
        except ValueError:
            continue
        # strftime pads %d with a zero; editors write "3 March", so write the day by hand.
        padded = re.search(r"\b0\d\b", cleaned) is not None or fmt == "%Y-%m-%d"
        day_text = f"{day.day:02d}" if padded else str(day.day)
        if had_ordinal:
            day_text += _suffix(day.day)
        return day.strftime(fmt.replace("%d", "@@")).replace("@@", day_text)
    return text


def _suffix(n: int) -> str:
    if 11 <= n % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def next_edition_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return a copy of the blocks with every masthead's date moved to the next morning."""
    out = copy.deepcopy(blocks)
    for block in out:
        if block.get("type") == "masthead" and block.get("date"):
            block["date"] = next_morning(str(block["date"]))
    return out


def copy_subject(subject: str, limit: int = 250) -> str:
    """Name the copy so the list tells it from the original."""
    base = subject[: limit - len(COPY_MARK)]
    return subject if subject.endswith(COPY_MARK) else base + COPY_MARK
