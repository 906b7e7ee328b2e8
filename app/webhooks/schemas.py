"""Request and response bodies of the outbound webhooks API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class WebhookIn(BaseModel):
    """A new endpoint and the events it wants."""

    url: str = Field(max_length=2000)
    events: list[str] = Field(min_length=1, max_length=20)


class WebhookCreated(BaseModel):
    """The new webhook's id and its signing secret (shown this once)."""

    id: int
    secret: str
    url: str
    events: list[str]
