"""The notices an issue page shows after an action (named by its `done=` query)."""

from __future__ import annotations

from fastapi import Request

NOTICES = {
    "created": "The draft is saved.",
    "saved": "Your changes are saved.",
    "test": "A test copy is on its way.",
    "scheduled": "The issue is scheduled.",
    "local": "Each reader gets the issue at that time in their own time zone; "
    "those whose moment has passed get it now.",
    "sending": "The send has started.",
    "paused": "The send is paused; nothing more goes out until you resume it.",
    "resumed": "The send continues where it stopped.",
    "cancelled": "The send is cancelled; unsent copies will not go out.",
    "deleted": "The draft is deleted.",
    "duplicated": "A new draft from that issue, its masthead dated the next morning.",
}


def done_notice(request: Request) -> str | None:
    """Return the notice the `done=` query names, if any."""
    return NOTICES.get(request.query_params.get("done", ""))
