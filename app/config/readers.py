"""What readers meet: sign-up confirmation, the newsletter's masthead, and their own morning."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from app.config.timezones import is_time_zone

# Three groups, not one: Settings keeps every field in its old place (app.config.settings).


class SignupSettings(BaseModel):
    """Confirmation links and how often one address may be sent one."""

    confirm_token_max_age_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    confirmation_interval_seconds: int = Field(default=3600, ge=0)


class IdentitySettings(BaseModel):
    """The newsletter's identity (masthead, List-Id) and how long public pages are cached."""

    newsletter_name: str = "The AI Morning Post"
    newsletter_tagline: str = "Artificial Intelligence • Machine Learning • Future Tech"
    list_id: str = ""
    # Public pages are cached in memory; each process asks the database at most this often
    # whether an issue changed, so an edit shows everywhere within this many seconds.
    page_cache_seconds: float = Field(default=1.0, ge=0, le=60)


class ReaderSettings(BaseModel):
    """The reader's morning (issue 12): time zones, welcome email, postal address."""

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
