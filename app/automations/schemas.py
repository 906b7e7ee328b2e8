"""Request and response bodies of the feeds API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FeedIn(BaseModel):
    """A feed to poll."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000)
    newsletter: str | None = Field(default=None, max_length=120)
    every: str = Field(default="PT1H", max_length=40)
    mode: Literal["draft", "send"] = "draft"
    max_items: int = Field(default=10, ge=1, le=50)


class FeedOut(BaseModel):
    """A feed and how its polls went."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    newsletter: str = ""
    every: str
    mode: str
    max_items: int
    title: str
    created_at: datetime
    next_poll_at: datetime
    last_poll_at: datetime | None
    last_status: int | None
    last_error: str | None
    failures: int
    last_issue_id: int | None
    items_seen: int = 0


class PollOut(BaseModel):
    """What polling now did."""

    issue_id: int | None
    feed: FeedOut
