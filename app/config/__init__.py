"""Settings read from the environment (prefix MORNINGPOST_) and a `.env` file.

The package's modules hold one concern each (fields by area in essentials, delivery, readers,
deliverability, integrations, hardening and media; value parsing in parsing; the class in
settings; start-up in loading and startup); the names below are where callers import them from.
"""

from __future__ import annotations

from app.config.essentials import DEFAULT_FROM
from app.config.loading import ConfigError, dkim_alignment_error, load_settings
from app.config.settings import Settings
from app.config.startup import announce_defaults, ensure_secret_keys, follow_listen_address
from app.config.timezones import is_time_zone, time_zone_names

__all__ = [
    "DEFAULT_FROM",
    "ConfigError",
    "Settings",
    "announce_defaults",
    "dkim_alignment_error",
    "ensure_secret_keys",
    "follow_listen_address",
    "is_time_zone",
    "load_settings",
    "time_zone_names",
]
