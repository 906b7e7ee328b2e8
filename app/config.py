"""Settings read from the environment (prefix MORNINGPOST_) and a `.env` file."""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import re
import secrets
from email.headerregistry import Address
from email.utils import parseaddr
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.relay_config import RelaySpec, parse_relays

log = logging.getLogger("morningpost")

DEFAULT_FROM = "The AI Morning Post <news@morningpost.example>"
_DNS_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_-]{1,63})*")


@functools.cache
def time_zone_names() -> frozenset[str]:
    """Return every IANA time zone name known here (system zone data or the tzdata package)."""
    # The system directory also holds files that are not zones a person lives in.
    return frozenset(available_timezones()) - {"localtime", "Factory", "posixrules"}


def is_time_zone(name: str) -> bool:
    """Tell whether `name` is a known IANA time zone name (exact spelling)."""
    # The set, not ZoneInfo(name): that would also accept file names such as "localtime".
    return name in time_zone_names()


class ConfigError(Exception):
    """A configuration value is unusable; the message names the variable."""


class Settings(BaseSettings):
    """Everything configurable; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="MORNINGPOST_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str = "sqlite:///./var/morningpost.db"
    smtp_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    secret_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    from_address: str = Field(default="", alias="MORNINGPOST_FROM")
    var_dir: Path = Path("./var")

    # Delivery tuning.
    smtp_connections: int = Field(default=4, ge=1, le=64)
    # Requests doing database work at once; more wait their turn (app.routing). The thread and
    # database pools are sized from it (app.db.pool_options).
    web_concurrency: int = Field(default=8, ge=1, le=256)
    batch_size: int = Field(default=200, ge=1, le=10_000)
    rate_per_second: float = Field(default=0.0, ge=0)  # 0 = as fast as the relay allows
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    # Renewed every third of it while the worker lives; a dead worker's rows come back after it.
    lease_seconds: int = Field(default=60, ge=5)
    retry_backoff_seconds: float = Field(default=60.0, ge=0)
    max_attempts: int = Field(default=8, ge=1)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Rows handed to SMTP and not yet recorded, at most: all that a crash can leave `unknown`.
    # 0 = 2 x SMTP_CONNECTIONS (the messages on the wire and the next group). A larger window
    # means fewer database commits per message (faster) and more `unknown` after a crash.
    handover_window: int = Field(default=0, ge=0, le=10_000)
    # A worker whose database stays unreachable this long exits (status 1) for its supervisor.
    worker_give_up_seconds: float = Field(default=300.0, gt=0)
    # Dead: results are written with every hand-over group (the crash window is the hand-over
    # window). Still accepted, whatever its value, so old .env files load; start-up warns.
    flush_every: int | str | None = None
    # Per-recipient-domain limits, messages/s: "gmail.com=20,yahoo.com=10"; other domains get
    # DOMAIN_RATE_DEFAULT (0 = no per-domain limit). Each worker enforces its own share.
    domain_rates: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    domain_rate_default: float = Field(default=0.0, ge=0)
    # A send pauses itself when this share of its last PAUSE_WINDOW results are errors.
    pause_error_rate: float = Field(default=0.5, gt=0, le=1)
    pause_window: int = Field(default=200, ge=10)
    # A relay that refuses, fails TLS or login, or throttles (421, 4.7.x) rests this long,
    # doubling with each failure in a row (at most 15 minutes), while the others carry on.
    relay_rest_seconds: float = Field(default=30.0, gt=0)
    run_worker: bool = True  # `serve` runs a delivery worker in-process unless this is off

    # Subscribers.
    confirm_token_max_age_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    confirmation_interval_seconds: int = Field(default=3600, ge=0)

    # Newsletter identity (masthead, List-Id).
    newsletter_name: str = "The AI Morning Post"
    newsletter_tagline: str = "Artificial Intelligence • Machine Learning • Future Tech"
    list_id: str = ""
    # Public pages are cached in memory; each process asks the database at most this often
    # whether an issue changed, so an edit shows everywhere within this many seconds.
    page_cache_seconds: float = Field(default=1.0, ge=0, le=60)

    # Deliverability: DKIM signing (all three or none), VERP bounces, list hygiene.
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_private_key_path: Path | None = Field(default=None, validate_default=True)
    bounce_domain: str = ""  # the VERP return-path domain; empty = the From domain
    soft_bounce_threshold: int = Field(default=3, ge=1)
    soft_bounce_window_days: int = Field(default=30, ge=1)
    # Sign-ups that never confirm are deleted after this many days (they never consented).
    pending_purge_days: int = Field(default=14, ge=1)

    # The reader's morning (issue 12): time zones, welcome email, postal address.
    default_timezone: str = "UTC"  # IANA name; subscribers without one of their own get it
    welcome_email: bool = True  # one welcome email after a reader confirms
    postal_address: str = ""  # printed in every email's footer (CAN-SPAM, GDPR imprint)

    @field_validator("default_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        if not is_time_zone(value.strip()):
            raise ValueError(f"unknown IANA time zone {value!r}; e.g. UTC or Europe/Berlin")
        return value.strip()

    @field_validator("postal_address")
    @classmethod
    def _check_postal(cls, value: str) -> str:
        # One line in a footer; a CR/LF would break the text part's layout, nothing more.
        return " ".join(value.split())

    # Insight and integrations: /metrics, outbound webhooks, click counts, JSON logs.
    metrics_token: str = ""  # a bearer token for Prometheus besides editor tokens
    webhook_backoff_seconds: float = Field(default=10.0, ge=0)  # doubles per attempt, max 1 h
    webhook_give_up_seconds: int = Field(default=24 * 3600, ge=0)
    webhook_disable_after: int = Field(default=50, ge=1)  # consecutive failed attempts
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_allow_private: bool = False  # let webhooks reach private/loopback addresses
    feeds_allow_private: bool = False  # let RSS/Atom feeds be fetched from private addresses
    click_counts: bool = True  # rewrite the HTML part's links to signed /l/<token> redirects
    track_readers: bool = False  # record who clicked (links carry the reader; README, privacy)
    log_format: Literal["text", "json"] = "text"
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)  # `worker` serves /metrics; 0 = off
    worker_metrics_host: str = "127.0.0.1"
    # A mailbox that receives bounces, for those who cannot point an MX at `morningpost bounces`:
    # imaps://user:pass@host:993/INBOX, imap://… (STARTTLS required) or pop3s://user:pass@host:995.
    bounce_mailbox: str = ""
    bounce_mailbox_folder: str = "Processed"  # IMAP: where handled reports go (POP3 deletes)
    bounce_mailbox_interval_seconds: float = Field(default=60.0, gt=0)

    @field_validator("bounce_mailbox")
    @classmethod
    def _check_mailbox(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("imaps", "imap", "pop3s"):
            raise ValueError("use imaps://, imap:// (STARTTLS) or pop3s://user:pass@host/")
        try:
            parts.port  # noqa: B018 - a bad port raises here
        except ValueError:
            raise ValueError("the port is not a number from 1 to 65535") from None
        if not parts.hostname or not parts.username or parts.password is None:
            raise ValueError("the URL needs a user, a password and a host")
        return value

    # Email providers' event webhooks (bounces and complaints in each provider's own format).
    # SES via SNS: the topics we accept, and the hosts a signing certificate may come from.
    sns_topics: Annotated[list[str], NoDecode] = Field(default_factory=list)
    sns_cert_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["sns.*.amazonaws.com"]
    )
    postmark_webhook_auth: str = ""  # "user:password" for HTTP Basic on /webhooks/postmark
    sendgrid_public_key: str = ""  # base64 DER (SubjectPublicKeyInfo) of the ECDSA P-256 key
    mailgun_signing_key: str = ""  # the HTTP webhook signing key
    # Hardening (issue 9): whose X-Forwarded-For/-Proto to believe, and which Host names.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    # Host names answered besides BASE_URL's and localhost (e.g. "news.example.org,www.…").
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Images (issue 22): uploads stored by content hash under VAR_DIR/media, or in an
    # S3-compatible bucket named by MEDIA_URL (s3://bucket/prefix?endpoint=…&region=…).
    media_url: str = ""
    # At most 10 MB: the request limit of /media (app.web.limits) is 10 MB and a form's overhead.
    media_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=10 * 1024 * 1024)
    # Preflight link checks: per-link timeout, links fetched at once, minutes a result is kept.
    link_check_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    link_check_concurrency: int = Field(default=8, ge=1, le=64)
    link_check_cache_seconds: int = Field(default=600, ge=0)
    link_check_allow_private: bool = False  # let the link check reach private/loopback hosts

    @field_validator("media_url")
    @classmethod
    def _check_media_url(cls, value: str) -> str:
        value = value.strip()
        if value:
            parts = urlsplit(value)
            if parts.scheme != "s3" or not parts.netloc:
                raise ValueError("must look like s3://bucket/prefix?endpoint=https://…&region=…")
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @field_validator("postmark_webhook_auth")
    @classmethod
    def _check_postmark(cls, value: str) -> str:
        if value and ":" not in value:
            raise ValueError("expected user:password (HTTP Basic credentials)")
        return value

    @field_validator("sendgrid_public_key")
    @classmethod
    def _check_sendgrid(cls, value: str) -> str:
        if value.strip():
            try:
                key = serialization.load_der_public_key(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                raise ValueError("not a base64 DER public key (copy it from SendGrid)") from None
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise ValueError("not an ECDSA public key")
        return value.strip()

    @field_validator("sns_topics", "sns_cert_hosts", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        networks: list[IPv4Network | IPv6Network] = []
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            try:
                networks.append(ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"not an address or network: {item!r}") from None
        return networks

    @field_validator("secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            keys = [k.strip() for k in value.split(",")]
            if any(not k for k in keys):
                raise ValueError("empty key in the comma-separated list")
            return keys
        return value

    @field_validator("domain_rates", mode="before")
    @classmethod
    def _split_domain_rates(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        rates: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            domain, sep, rate = item.partition("=")
            try:
                number = float(rate)
            except ValueError:
                number = -1.0
            if not sep or not domain.strip() or number <= 0:
                raise ValueError(f"expected domain=messages-per-second, got {item!r}")
            rates[domain.strip().lower()] = number
        return rates

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if not scheme or scheme.split("+")[0] not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"unsupported scheme {scheme!r}; use sqlite:/// or postgresql://")
        if scheme in ("postgresql", "postgres"):
            # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
            value = "postgresql+psycopg" + value[len(scheme) :]
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        specs = parse_relays(value)  # one relay or several, each with ?name=&rate=&daily=&weight=
        if len(specs) == 1 and specs[0].plain:
            return value.strip()
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value.rstrip("/")

    @field_validator("from_address")
    @classmethod
    def _check_from(cls, value: str) -> str:
        if not value:
            return value
        if "\r" in value or "\n" in value:
            raise ValueError("line breaks are not allowed")
        _name, addr = parseaddr(value)
        if "@" not in addr or "." not in addr.rsplit("@", 1)[1]:
            raise ValueError(f"not an address: {value!r}")
        return value

    @field_validator("dkim_selector", "dkim_domain", "bounce_domain")
    @classmethod
    def _check_label(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if value and not _DNS_NAME.fullmatch(value):
            raise ValueError(f"not a DNS name: {value!r}")
        return value

    @field_validator("dkim_private_key_path")
    @classmethod
    def _check_dkim(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        # Runs after the selector and domain (field order), so it can see all three.
        given = {
            "MORNINGPOST_DKIM_SELECTOR": bool(info.data.get("dkim_selector")),
            "MORNINGPOST_DKIM_DOMAIN": bool(info.data.get("dkim_domain")),
            "MORNINGPOST_DKIM_PRIVATE_KEY_PATH": value is not None and str(value) != "",
        }
        if not any(given.values()):
            return None
        if not all(given.values()):
            missing = ", ".join(k for k, ok in given.items() if not ok)
            raise ValueError(f"DKIM needs the selector, the domain and the key; missing {missing}")
        assert value is not None
        try:
            pem = value.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read the key file {str(value)!r}: {exc.strerror}") from None
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise ValueError(f"{str(value)!r} is not an unencrypted PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 1024:
            raise ValueError(f"{str(value)!r} is not an RSA key of at least 1024 bits")
        return value

    # Derived values ------------------------------------------------------------------

    @property
    def sender(self) -> Address:
        """Return the From header as an Address."""
        name, addr = parseaddr(self.from_address or DEFAULT_FROM)
        user, domain = addr.rsplit("@", 1)
        return Address(display_name=name, username=user, domain=domain)

    @property
    def list_id_header(self) -> str:
        """Return the List-Id value (RFC 2919)."""
        if self.list_id:
            return self.list_id
        return f"{self.newsletter_name} <newsletter.{self.sender.domain}>"

    @property
    def dkim_enabled(self) -> bool:
        """Tell whether outgoing mail is DKIM-signed."""
        return self.dkim_private_key_path is not None

    @property
    def verp_domain(self) -> str:
        """Return the domain of VERP return paths (MORNINGPOST_BOUNCE_DOMAIN or the From domain)."""
        return self.bounce_domain or self.sender.domain.lower()

    @property
    def relays(self) -> list[RelaySpec]:
        """Return the configured relays (none: the capture mailer)."""
        return parse_relays(self.smtp_url) if self.smtp_url else []

    @property
    def outbox_dir(self) -> Path:
        """Return where the capture mailer saves messages."""
        return self.var_dir / "outbox"


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
