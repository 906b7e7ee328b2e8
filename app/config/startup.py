"""What start-up does with the settings: a signing key on first run, defaults named, link base."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from pathlib import Path

from app.config.essentials import DEFAULT_FROM
from app.config.settings import Settings

log = logging.getLogger("morningpost")


def ensure_secret_keys(settings: Settings) -> list[str]:
    """Return the signing keys, generating and saving one on first run if none is set."""
    if settings.secret_keys:
        return settings.secret_keys
    path = settings.var_dir / "secret_key"
    key = _read_key(path)
    if not key:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = _create_key(path)
        if created is None:
            # Another process (serve and a worker started together) saved its key first:
            # sign with that one, or links signed by one process would not open in the other.
            key = _read_key(path)
        else:
            key = created
            log.warning(
                "MORNINGPOST_SECRET_KEYS is not set: generated a signing key into %s; "
                "set it explicitly in production",
                path,
            )
    if not key:
        raise RuntimeError(f"{path} is empty: remove it, or set MORNINGPOST_SECRET_KEYS")
    settings.secret_keys = [key]
    return settings.secret_keys


def _read_key(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _create_key(path: Path) -> str | None:
    """Save a new key at `path` and return it; None when a key file appeared there first.

    The key is written whole into a file only its owner can read (mkstemp: mode 0600), which
    is then linked into place: the link fails if the name exists, so two first runs never
    overwrite each other's key, and nobody reads a half-written file or one open to others.
    """
    key = secrets.token_urlsafe(48)
    fd, temporary = tempfile.mkstemp(prefix=".secret_key.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
            out.flush()
            os.fsync(out.fileno())
        if path.exists() and not _read_key(path):
            os.replace(temporary, path)  # an empty file left by hand (or a crash)
            return key
        try:
            os.link(temporary, path)
        except FileExistsError:
            return None
        except OSError:
            # A file system without hard links: create the name exclusively instead.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return None
            with os.fdopen(fd, "w") as out:
                out.write(key + "\n")
        return key
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


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
