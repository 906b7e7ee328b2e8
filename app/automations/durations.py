"""ISO 8601 durations (PT1H, P3D, P1W, PT30S) and "daily HH:MM" schedules."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from app.errors import InvalidInput

_DURATION = re.compile(
    r"P(?:(?P<w>\d{1,4})W)?(?:(?P<d>\d{1,5})D)?"
    r"(?:T(?:(?P<h>\d{1,6})H)?(?:(?P<m>\d{1,7})M)?(?:(?P<s>\d{1,9})S)?)?"
)
_DAILY = re.compile(r"daily\s+([01]\d|2[0-3]):([0-5]\d)")


def parse_duration(text: str) -> timedelta:
    """Return the timedelta of an ISO 8601 duration of weeks, days, hours, minutes, seconds."""
    match = _DURATION.fullmatch(text.strip().upper()) if isinstance(text, str) else None
    if match is None or not any(match.groupdict().values()) or text.strip().upper().endswith("T"):
        raise InvalidInput(
            f"{str(text)[:40]!r} is not an ISO 8601 duration such as PT1H, P3D, P1W or PT30S."
        )
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    return timedelta(
        weeks=parts["w"], days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"]
    )


def parse_schedule(text: str, minimum: timedelta) -> str:
    """Check a polling schedule ("PT1H", or "daily HH:MM" in UTC) and return it normalised."""
    raw = text.strip() if isinstance(text, str) else ""
    daily = _DAILY.fullmatch(raw.lower())
    if daily:
        return f"daily {daily.group(1)}:{daily.group(2)}"
    period = parse_duration(raw)
    if period < minimum:
        raise InvalidInput(f"Poll at most every {int(minimum.total_seconds())} seconds.")
    return raw.upper()


def next_run(schedule: str, after: datetime) -> datetime:
    """Return when a schedule next falls due after `after`."""
    if schedule.startswith("daily "):
        hour, minute = (int(x) for x in schedule[6:].split(":"))
        moment = datetime.combine(after.astimezone(UTC).date(), time(hour, minute), tzinfo=UTC)
        return moment if moment > after else moment + timedelta(days=1)
    return after + parse_duration(schedule)
