"""What the settings page shows: identity, DNS records to publish, defaults in use; no secrets."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from app.config import Settings
from app.config.essentials import DEFAULT_FROM
from app.sends.dkim import public_key_der, txt_record


@dataclass(frozen=True)
class ProviderLine:
    """One email provider's webhook: where to point it and whether it has been heard from."""

    name: str
    url: str
    setting: str  # the variable that holds its credential
    configured: bool
    last_event: datetime | None


@dataclass
class SettingsView:
    """Read-only facts about this installation, safe to show an editor."""

    sender: str
    base_url: str
    list_id: str
    database: str
    smtp: str
    dkim: str
    bounce_domain: str  # empty unless MORNINGPOST_BOUNCE_DOMAIN is set
    dns: list[tuple[str, str]] = field(default_factory=list)  # (what, record)
    defaults: list[str] = field(default_factory=list)
    providers: list[ProviderLine] = field(default_factory=list)
    bounce_mailbox: str = ""


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def describe(
    settings: Settings, last_events: dict[str, datetime | None] | None = None
) -> SettingsView:
    """Return the page's facts; passwords, keys and secrets never appear."""
    domain = settings.sender.domain.lower()
    view = SettingsView(
        sender=str(settings.sender),
        base_url=settings.base_url,
        list_id=settings.list_id_header,
        database=_without_password(settings.database_url),
        smtp=", ".join(_without_password(r.url) for r in settings.relays) or "capture (no relay)",
        dkim=(
            f"signing as d={settings.dkim_domain}, s={settings.dkim_selector}"
            if settings.dkim_enabled
            else "off: messages are not signed"
        ),
        # Only a domain the operator set: the From domain it otherwise falls back to is shown
        # as From already.
        bounce_domain=settings.bounce_domain,
        bounce_mailbox=(
            _without_password(settings.bounce_mailbox) if settings.bounce_mailbox else ""
        ),
    )
    seen = last_events or {}
    base = settings.base_url.rstrip("/")
    view.providers = [
        ProviderLine(name, f"{base}/webhooks/{key}", setting, configured, seen.get(key))
        for key, name, setting, configured in (
            ("ses", "Amazon SES (SNS)", "MORNINGPOST_SNS_TOPICS", bool(settings.sns_topics)),
            (
                "postmark",
                "Postmark",
                "MORNINGPOST_POSTMARK_WEBHOOK_AUTH",
                bool(settings.postmark_webhook_auth),
            ),
            (
                "sendgrid",
                "SendGrid",
                "MORNINGPOST_SENDGRID_PUBLIC_KEY",
                bool(settings.sendgrid_public_key),
            ),
            (
                "mailgun",
                "Mailgun",
                "MORNINGPOST_MAILGUN_SIGNING_KEY",
                bool(settings.mailgun_signing_key),
            ),
        )
    ]
    if settings.dkim_enabled and settings.dkim_private_key_path is not None:
        try:
            der = public_key_der(settings.dkim_private_key_path.read_bytes())
            view.dns.append(("DKIM", txt_record(settings.dkim_selector, settings.dkim_domain, der)))
        except (OSError, ValueError):
            view.dns.append(
                ("DKIM", "the key file cannot be read now; run `morningpost dkim keygen`")
            )
    else:
        view.dns.append(
            (
                "DKIM",
                "none yet: `morningpost dkim keygen --selector S --domain "
                f"{domain}` prints the TXT record to publish",
            )
        )
    view.dns.append(("SPF", f'{domain}. IN TXT "v=spf1 include:<your relay> ~all"'))
    view.dns.append(
        ("DMARC", f'_dmarc.{domain}. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"')
    )
    view.dns.append(
        ("Bounces", f"{settings.verp_domain}. IN MX 10 <the host running `morningpost bounces`>.")
    )
    if settings.database_url.startswith("sqlite"):
        view.defaults.append("Database: the embedded SQLite file (set MORNINGPOST_DATABASE_URL).")
    if settings.smtp_url is None:
        view.defaults.append(
            f"Mail: no relay; messages are saved as .eml files under {settings.outbox_dir} "
            "(set MORNINGPOST_SMTP_URL)."
        )
    if not settings.from_address:
        view.defaults.append(f"From: the made-up {DEFAULT_FROM} (set MORNINGPOST_FROM).")
    if _generated_key_in_use(settings):
        view.defaults.append(
            "Signing key: generated into var/secret_key (set MORNINGPOST_SECRET_KEYS)."
        )
    if settings.base_url == "http://127.0.0.1:8000":
        view.defaults.append("BASE_URL: http://127.0.0.1:8000, which readers cannot open.")
    if not settings.dkim_enabled:
        view.defaults.append("DKIM: off.")
    return view


def _generated_key_in_use(settings: Settings) -> bool:
    path = settings.var_dir / "secret_key"
    try:
        return settings.secret_keys == [path.read_text().strip()]
    except OSError:
        return False
