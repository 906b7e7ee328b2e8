"""When a reader's step is due: trigger time + after, then the first `at` in their zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.automations.durations import parse_duration
from app.errors import InvalidInput

_AT = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def parse_at(text: str | None) -> str | None:
    """Check a wall-clock time HH:MM (or None) and return it."""
    if text is None or text == "":
        return None
    if not isinstance(text, str) or not _AT.fullmatch(text.strip()):
        raise InvalidInput(f"{str(text)[:20]!r} is not a time of day HH:MM such as 06:00.")
    return text.strip()


def step_due(triggered_at: datetime, after: str, at: str | None, zone: str) -> datetime:
    """Return when a step is due for a reader who matched at `triggered_at` in `zone`."""
    base = triggered_at + parse_duration(after)
    if at is None:
        return base
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    local = base.astimezone(tz)
    hour, minute = (int(x) for x in at.split(":"))
    moment = datetime.combine(local.date(), time(hour, minute), tzinfo=tz)
    if moment < local:
        moment = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), tzinfo=tz)
    return moment.astimezone(UTC)
