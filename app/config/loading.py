"""Reading the settings at start-up: one line naming a bad value; checks across fields."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from app.config.settings import Settings

log = logging.getLogger("morningpost")


class ConfigError(Exception):
    """A configuration value is unusable; the message names the variable."""


def _field_env_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    if field.upper().startswith("MORNINGPOST_"):
        return field.upper()
    if field == "from_address":
        return "MORNINGPOST_FROM"
    return "MORNINGPOST_" + field.upper()


def load_settings(**overrides: object) -> Settings:
    """Read settings, failing with one line that names the bad variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{_field_env_name(err['loc'])}: {msg}") from None
    if settings.flush_every is not None:
        log.warning(
            "MORNINGPOST_FLUSH_EVERY is no longer used and is ignored (results are written "
            "with every hand-over group, see HANDOVER_WINDOW); remove it"
        )
    misaligned = dkim_alignment_error(settings)
    if misaligned:
        # Receivers enforcing DMARC would reject every message: refuse to start instead.
        raise ConfigError(misaligned)
    return settings


def dkim_alignment_error(settings: Settings) -> str | None:
    """Return why the From domain is not aligned with the DKIM domain (relaxed), or None."""
    if not settings.dkim_enabled:
        return None
    sender = settings.sender.domain.lower().rstrip(".")
    d = settings.dkim_domain
    if sender == d or sender.endswith("." + d):
        return None
    # DMARC passes on DKIM only when d= is the From domain or a parent of it.
    return (
        f"MORNINGPOST_DKIM_DOMAIN: {d!r} does not align with the From domain {sender!r}; "
        f"sign with {sender!r} or a parent domain of it"
    )
