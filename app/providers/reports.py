"""What a provider says about one recipient, whatever its format."""

from __future__ import annotations

from dataclasses import dataclass

from app.models import BounceKind

PROVIDERS = ("ses", "postmark", "sendgrid", "mailgun")


class BadSignature(Exception):
    """The request is not signed by the provider (or was replayed): answer 401."""


class BadPayload(Exception):
    """The request is signed but not in the provider's documented shape: answer 400."""


@dataclass(frozen=True)
class ProviderReport:
    """One bounce or complaint, reduced to what the suppression rules need."""

    provider: str
    event_id: str  # the provider's own id: a redelivered webhook counts once
    kind: BounceKind
    recipient: str  # lower-cased address, "" when the provider gave none
    message_id: str | None  # our Message-ID when the provider echoes it
    status_code: str = ""
    diagnostic: str = ""


def text(value: object, limit: int = 500) -> str:
    """Return a payload value as one line of at most `limit` characters ("" for non-strings)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return " ".join(str(value).split())[:limit]
