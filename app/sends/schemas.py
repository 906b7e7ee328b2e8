"""The per-recipient log as the HTTP API answers it (issues and subscribers share it)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class DeliveryOut(BaseModel):
    """One line of the per-recipient log."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    issue_id: int
    subscriber_id: int | None
    email: str | None
    status: str
    attempts: int
    last_reply: str | None
    updated_at: datetime
    sent_at: datetime | None


class DeliveryPageOut(BaseModel):
    """A page of the log; pass next_cursor back as `cursor` for the next one."""

    model_config = ConfigDict(from_attributes=True)

    items: list[DeliveryOut]
    next_cursor: str | None
