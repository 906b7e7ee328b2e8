"""Newsletters: create, edit, look up; who reads which; leaving one (flush only).

The package's modules hold one concern each (the fields' checks in fields, finding newsletters
in lookup, adding and changing them in editing, the masthead with the environment's fallback in
mastheads, the readers' condition in readers, a reader's standing in subscriptions, sign-up's
requests and confirmation in joining); the names below are where callers import them from.
"""

from __future__ import annotations

from app.audience.newsletters.editing import create_newsletter, update_newsletter
from app.audience.newsletters.fields import (
    ADDRESS,
    LIMITS,
    SLUG,
    TEXT_FIELDS,
    clean_relay,
    field_errors,
)
from app.audience.newsletters.joining import confirm_pending, drop_unasked, request_subscriptions
from app.audience.newsletters.lookup import (
    by_slug,
    find,
    get_newsletter,
    ids_of,
    list_newsletters,
    several,
)
from app.audience.newsletters.mastheads import (
    masthead,
    masthead_by_id,
    masthead_of,
    reader_mastheads,
)
from app.audience.newsletters.readers import audience_and, readers_of
from app.audience.newsletters.subscriptions import (
    LIVE_SENDS,
    choose,
    leave,
    set_subscription,
    still_taking,
    subscriptions_of,
)
from app.models import DEFAULT_NEWSLETTER_ID

__all__ = [
    "ADDRESS",
    "DEFAULT_NEWSLETTER_ID",
    "LIMITS",
    "LIVE_SENDS",
    "SLUG",
    "TEXT_FIELDS",
    "audience_and",
    "by_slug",
    "choose",
    "clean_relay",
    "confirm_pending",
    "create_newsletter",
    "drop_unasked",
    "field_errors",
    "find",
    "get_newsletter",
    "ids_of",
    "leave",
    "list_newsletters",
    "masthead",
    "masthead_by_id",
    "masthead_of",
    "reader_mastheads",
    "readers_of",
    "request_subscriptions",
    "set_subscription",
    "several",
    "still_taking",
    "subscriptions_of",
    "update_newsletter",
]
