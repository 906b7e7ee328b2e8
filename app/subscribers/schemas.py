"""Request and response bodies of the subscriber API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class SubscribeIn(BaseModel):
    """A public sign-up as JSON."""

    email: str = Field(max_length=400)
    name: str | None = Field(default=None, max_length=1000)
    timezone: str | None = Field(default=None, max_length=200)
    # The form's honeypot, under the same name: a bot filling every field fills this too.
    website: str | None = Field(default=None, max_length=1000)
    # Slugs of the newsletters to take; left out: the default newsletter.
    newsletters: list[str] | None = Field(default=None, max_length=50)


class SubscriberCreate(BaseModel):
    """An editor adding one subscriber."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=400)
    name: str | None = Field(default=None, max_length=1000)
    status: Literal["active", "pending"] = "active"
    timezone: str | None = Field(default=None, max_length=200)


class SubscriberPatch(BaseModel):
    """An editor changing a subscriber; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=400)
    name: str | None = Field(default=None, max_length=1000)
    status: Literal["active", "unsubscribed"] | None = None
    timezone: str | None = Field(default=None, max_length=200)
    # Merged into the reader's attributes; a null value removes that attribute.
    attributes: dict[str, Any] | None = None


class SubscriberOut(BaseModel):
    """A subscriber as editors see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str
    status: str
    consent_source: str
    consent_ip: str | None
    created_at: datetime
    status_changed_at: datetime
    confirmation_sent_at: datetime | None
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    paused_until: datetime | None
    timezone: str
    tags: list[str] = []
    attributes: dict[str, Any] = {}
    newsletters: dict[str, str] = {}  # slug: pending, active or unsubscribed


class SubscriberPage(BaseModel):
    """One page of subscribers; pass next_cursor back as `cursor` for the next one."""

    items: list[SubscriberOut]
    next_cursor: str | None


class RejectedRow(BaseModel):
    """A CSV row that was not imported."""

    row: int
    email: str
    reason: str


class ImportSummaryOut(BaseModel):
    """What an import did."""

    imported: int
    updated: int
    skipped_existing: int
    left: int = 0  # rows whose status says the reader left: kept as unsubscribed (or bounced)
    rejected_count: int
    rejected: list[RejectedRow]
    rows: int
