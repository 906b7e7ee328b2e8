"""Saving over someone else's save: the version a form was opened at, and what to say."""

from __future__ import annotations

STALE = (
    "Someone else saved this issue while you were editing it, so your changes are not saved "
    "yet. Their saved text is shown first, yours is still in the form: merge what you need "
    "into your text and save again."
)


def form_version(raw: str) -> int | None:
    """Return the version a form was opened at (None: a form without one saves as before)."""
    return int(raw) if raw.isdigit() and len(raw) < 10 else None
