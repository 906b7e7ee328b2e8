"""MORNINGPOST_SMTP_URL as a list of relays: `url[?name=&rate=&daily=&weight=]`, comma-separated.

The base of the house (config.py) parses it; the send core's relay pool (sends/smtp/relays.py)
uses the parsed specs. Our own query parameters are taken off the URL the relay sees.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

SMTP_SCHEMES = ("smtp", "smtps", "smtp+plain")
PARAMETERS = ("name", "rate", "daily", "weight")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,59}")


def default_port(scheme: str) -> int:
    """Return the port a relay URL without one is reached on (aiosmtplib's own choice).

    smtp:// must upgrade with STARTTLS: the submission port, 587; smtps://, implicit TLS: 465;
    smtp+plain:// (a relay on this machine): 25.
    """
    return {"smtps": 465, "smtp": 587}.get(scheme, 25)


@dataclass(frozen=True)
class RelaySpec:
    """One relay as configured: where, what it is called, and its limits (0 = none)."""

    name: str
    url: str  # without our parameters: what aiosmtplib connects to
    rate: float = 0.0  # messages/s across all workers
    daily: int = 0  # messages per UTC day, counted in the database
    weight: float = 1.0  # share of the traffic
    plain: bool = True  # no parameter given: behaves exactly as a lone relay always did

    @property
    def where(self) -> str:
        """Return host:port, for people (never the password)."""
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or default_port(parts.scheme)}"


def _number(key: str, raw: str, *, whole: bool) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0 or (whole and value != int(value)):
        kind = "a positive whole number" if whole else "a positive number"
        raise ValueError(f"{key} must be {kind}, got {raw!r}")
    return value


def parse_relay(text: str, position: int) -> RelaySpec:
    """Parse one relay URL with its optional parameters; raise ValueError saying what is wrong."""
    where = f"relay {position}"
    parts = urlsplit(text.strip())
    if parts.scheme not in SMTP_SCHEMES:
        raise ValueError(
            f"{where}: unknown scheme {parts.scheme!r}; use one of {', '.join(SMTP_SCHEMES)}"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{where}: the port is not a number from 1 to 65535") from exc
    if not parts.hostname:
        raise ValueError(f"{where}: no host name")
    params: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in PARAMETERS:
            raise ValueError(f"{where}: unknown parameter {key!r}; use {', '.join(PARAMETERS)}")
        if key in params:
            raise ValueError(f"{where}: {key} given twice")
        params[key] = value
    default = f"{parts.hostname}:{port}" if port else str(parts.hostname)
    name = params.get("name", default)
    if not _NAME.fullmatch(name):
        raise ValueError(f"{where}: name {name!r} must be 1-60 letters, digits and . _ : -")
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    try:
        rate = _number("rate", params["rate"], whole=False) if "rate" in params else 0.0
        daily = int(_number("daily", params["daily"], whole=True)) if "daily" in params else 0
        weight = _number("weight", params["weight"], whole=False) if "weight" in params else 1.0
    except ValueError as exc:
        raise ValueError(f"{where} ({name}): {exc}") from None
    return RelaySpec(name, url, rate, daily, weight, plain=not params)


def parse_relays(value: str) -> list[RelaySpec]:
    """Parse the comma-separated list; names must be unique."""
    items = [item for item in (part.strip() for part in value.split(",")) if item]
    if not items:
        raise ValueError("no relay URL")
    specs = [parse_relay(item, n) for n, item in enumerate(items, 1)]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ValueError(f"two relays are named {spec.name!r}; give each its own ?name=")
        seen.add(spec.name)
    return specs
