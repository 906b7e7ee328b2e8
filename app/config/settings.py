"""The Settings class: every group of fields in one object, and the values derived from them."""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config.deliverability import DeliverabilitySettings
from app.config.delivery import DeliverySettings
from app.config.essentials import DEFAULT_FROM, EssentialSettings
from app.config.hardening import HardeningSettings
from app.config.integrations import InsightSettings, ProviderSettings
from app.config.media import MediaSettings
from app.config.readers import IdentitySettings, ReaderSettings, SignupSettings
from app.relay_config import RelaySpec, parse_relays


# pydantic takes fields from the last base first, so the groups are listed last to first: the
# fields then keep one order (EssentialSettings' first), which decides which bad value start-up
# names when there are several, and lets DKIM's key check see the selector and the domain.
class Settings(
    MediaSettings,
    HardeningSettings,
    ProviderSettings,
    InsightSettings,
    ReaderSettings,
    DeliverabilitySettings,
    IdentitySettings,
    SignupSettings,
    DeliverySettings,
    EssentialSettings,
    BaseSettings,
):
    """Everything configurable; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="MORNINGPOST_", env_file=".env", extra="ignore", populate_by_name=True
    )

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
