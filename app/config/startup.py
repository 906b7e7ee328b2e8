"""What start-up does with the settings: a signing key on first run, defaults named, link base."""

from __future__ import annotations

import logging
import secrets

from app.config.essentials import DEFAULT_FROM
from app.config.settings import Settings

log = logging.getLogger("morningpost")


def ensure_secret_keys(settings: Settings) -> list[str]:
    """Return the signing keys, generating and saving one on first run if none is set."""
    if settings.secret_keys:
        return settings.secret_keys
    path = settings.var_dir / "secret_key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            settings.secret_keys = [key]
            return settings.secret_keys
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key + "\n")
    path.chmod(0o600)
    log.warning(
        "MORNINGPOST_SECRET_KEYS is not set: generated a signing key into %s; "
        "set it explicitly in production",
        path,
    )
    settings.secret_keys = [key]
    return settings.secret_keys


def announce_defaults(settings: Settings) -> None:
    """Log one line for each embedded default in use, so nothing is silently a toy."""
    if settings.database_url.startswith("sqlite"):
        log.info(
            "database: embedded SQLite at %s (set MORNINGPOST_DATABASE_URL)", settings.database_url
        )
    if settings.smtp_url is None:
        log.info(
            "smtp: MORNINGPOST_SMTP_URL unset; the capture mailer saves each message under %s",
            settings.outbox_dir,
        )
    if not settings.from_address:
        log.warning("MORNINGPOST_FROM unset: sending as the fake %s", DEFAULT_FROM)


def follow_listen_address(settings: Settings, host: str, port: int) -> str:
    """Point links at the address `serve` listens on unless MORNINGPOST_BASE_URL is set; log it."""
    if "base_url" in settings.model_fields_set:
        log.info("links use %s (MORNINGPOST_BASE_URL)", settings.base_url)
        return settings.base_url
    # A wildcard address is not something a browser can open: name the loopback instead.
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    settings.base_url = f"http://{shown}:{port}"
    log.info(
        "links use %s (from --host/--port; set MORNINGPOST_BASE_URL for a public address)",
        settings.base_url,
    )
    return settings.base_url
