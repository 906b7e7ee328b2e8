"""Request and response bodies of /newsletters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.rendering.masthead import Masthead


class NewsletterIn(BaseModel):
    """A newsletter to create; a field left out falls back to the environment's setting."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    slug: str = Field(max_length=80)
    name: str = Field(max_length=200)
    tagline: str | None = Field(default=None, max_length=300)
    from_address: str | None = Field(default=None, max_length=320, alias="from")
    reply_to: str | None = Field(default=None, max_length=320)
    postal_address: str | None = Field(default=None, max_length=500)
    list_id: str | None = Field(default=None, max_length=255)
    # A relay named in MORNINGPOST_SMTP_URL (?name=): its issues go through it alone; null: pool.
    relay: str | None = None


class NewsletterPatch(BaseModel):
    """Fields to change; null (or "") puts one back to the environment's setting."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    slug: str | None = Field(default=None, max_length=80)
    name: str | None = Field(default=None, max_length=200)
    tagline: str | None = Field(default=None, max_length=300)
    from_address: str | None = Field(default=None, max_length=320, alias="from")
    reply_to: str | None = Field(default=None, max_length=320)
    postal_address: str | None = Field(default=None, max_length=500)
    list_id: str | None = Field(default=None, max_length=255)
    # A relay named in MORNINGPOST_SMTP_URL (?name=): its issues go through it alone; null: pool.
    relay: str | None = None


class NewsletterOut(BaseModel):
    """A newsletter with its effective fields (its own, or the settings')."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: int
    slug: str
    name: str
    tagline: str
    from_address: str = Field(alias="from")
    reply_to: str | None
    postal_address: str
    list_id: str
    relay: str | None  # None: the pool, spread by weight
    default: bool
    inherited: list[str]  # the fields that show the environment's setting

    @classmethod
    def of(cls, head: Masthead, inherited: list[str], relay: str | None = None) -> NewsletterOut:
        """Build the answer from a masthead and the newsletter's relay."""
        return cls.model_validate(
            {
                "id": head.id,
                "slug": head.slug,
                "name": head.name,
                "tagline": head.tagline,
                "from": head.from_address,
                "reply_to": head.reply_to or None,
                "postal_address": head.postal_address,
                "list_id": head.list_id,
                "relay": relay,
                "default": head.is_default,
                "inherited": inherited,
            }
        )
