"""Subscriber decisions: double opt-in, confirm, leave, preferences, editor CRUD (flush only)."""

from __future__ import annotations

from app.subscribers.editing import (
    create_subscriber,
    erase_subscriber,
    list_subscribers,
    subscriber_deliveries,
    update_subscriber,
)
from app.subscribers.records import get_subscriber, is_suppressed
from app.subscribers.self_service import (
    GONE,
    NO_UNDO,
    OUTDATED_LINK,
    PAUSE_MAX_WEEKS,
    Unsubscribed,
    choose_newsletters,
    get_subscriber_for_page,
    leave_newsletter,
    masked_address,
    resubscribe,
    unsubscribe,
    update_preferences,
)
from app.subscribers.signup import (
    CONSENT_SOURCES,
    STALE_CONFIRM,
    SubscribeOutcome,
    confirm,
    subscribe,
)

# The subscriber service, in rooms of one purpose each; these names stay importable from here.
from app.subscribers.values import (
    NAME_MAX,
    PAGE_MAX,
    clean_name,
    clean_timezone,
    mask_email,
    parse_cursor,
    timezone_or_default,
)

__all__ = [
    "CONSENT_SOURCES",
    "GONE",
    "NAME_MAX",
    "NO_UNDO",
    "OUTDATED_LINK",
    "PAGE_MAX",
    "PAUSE_MAX_WEEKS",
    "STALE_CONFIRM",
    "SubscribeOutcome",
    "Unsubscribed",
    "choose_newsletters",
    "clean_name",
    "clean_timezone",
    "confirm",
    "create_subscriber",
    "erase_subscriber",
    "get_subscriber",
    "get_subscriber_for_page",
    "is_suppressed",
    "leave_newsletter",
    "list_subscribers",
    "mask_email",
    "masked_address",
    "parse_cursor",
    "resubscribe",
    "subscribe",
    "subscriber_deliveries",
    "timezone_or_default",
    "unsubscribe",
    "update_preferences",
    "update_subscriber",
]
