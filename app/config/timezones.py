"""IANA time zone names: the set a setting or a reader's choice is checked against."""

from __future__ import annotations

import functools
from zoneinfo import available_timezones


@functools.cache
def time_zone_names() -> frozenset[str]:
    """Return every IANA time zone name known here (system zone data or the tzdata package)."""
    # The system directory also holds files that are not zones a person lives in.
    return frozenset(available_timezones()) - {"localtime", "Factory", "posixrules"}


def is_time_zone(name: str) -> bool:
    """Tell whether `name` is a known IANA time zone name (exact spelling)."""
    # The set, not ZoneInfo(name): that would also accept file names such as "localtime".
    return name in time_zone_names()
