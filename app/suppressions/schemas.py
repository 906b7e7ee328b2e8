"""Request and response bodies of the suppression API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

# Reasons an editor may give by hand; the bounce pipeline writes the same ones.
EditorReason = Literal["manual", "hard_bounce", "soft_bounce", "complaint"]
EDITOR_REASONS: tuple[str, ...] = get_args(EditorReason)  # what an editor may record


class SuppressionIn(BaseModel):
    """An editor suppressing one address."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=400)
    reason: EditorReason = "manual"
    detail: str = Field(default="", max_length=500)


class SuppressionOut(BaseModel):
    """One entry; the address itself is not kept, only its hash."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email_hash: str
    reason: str
    source: str
    detail: str
    created_at: datetime


class SuppressionPage(BaseModel):
    """One page of entries; pass next_cursor back as `cursor` for the next one."""

    items: list[SuppressionOut]
    next_cursor: str | None


class SuppressionImportOut(BaseModel):
    """What an import did."""

    added: int
    already: int
    rejected: list[str]
