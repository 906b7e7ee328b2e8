"""Request and response bodies of the audience API: tags and segments."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.models.base import ID_MAX


class TagsIn(BaseModel):
    """Tags to add to one reader."""

    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(max_length=50)


class TagsOut(BaseModel):
    """A reader's tags after the change."""

    tags: list[str]


class BulkTagsIn(BaseModel):
    """Tags to add and remove on many readers: by ids, a saved segment or a filter."""

    model_config = ConfigDict(extra="forbid")

    add: list[str] = Field(default_factory=list, max_length=50)
    remove: list[str] = Field(default_factory=list, max_length=50)
    ids: list[int] | None = Field(default=None, max_length=100_000)
    segment: int | None = Field(default=None, ge=1, le=ID_MAX)
    filter: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _one_target(self) -> BulkTagsIn:
        targets = [t for t in (self.ids, self.segment, self.filter) if t is not None]
        if len(targets) != 1:
            raise ValueError('name exactly one of "ids", "segment" or "filter"')
        return self


class BulkTagsOut(BaseModel):
    """What a bulk change did."""

    matched: int
    added: int
    removed: int


class SegmentIn(BaseModel):
    """A segment to save."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    filter: str = Field(max_length=2000)
    newsletter: str | None = Field(default=None, max_length=80)  # slug; none: every reader


class SegmentOut(BaseModel):
    """A saved segment."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    filter: str
    newsletter_id: int | None = None
    created_at: datetime
    updated_at: datetime


class CountOut(BaseModel):
    """How many readers a segment reaches now."""

    count: int


class PreviewOut(BaseModel):
    """How many readers a filter reaches now, and the first few addresses."""

    count: int
    sample: list[str]
