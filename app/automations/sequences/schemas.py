"""Request and response bodies of the sequences API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class StepBody(BaseModel):
    """A step: the draft issue used as its template, its delay, its optional time of day."""

    model_config = ConfigDict(extra="forbid")

    issue: int = Field(ge=1, le=2**31 - 1)
    after: str = Field(default="PT0S", max_length=40)
    at: str | None = Field(default=None, max_length=5)


class SequenceIn(BaseModel):
    """A new sequence of a newsletter (its slug; the default one when left out)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    newsletter: str | None = Field(default=None, max_length=120)
    trigger: Literal["confirmed"] | dict[str, str]
    steps: list[StepBody] = Field(min_length=1, max_length=20)
    backfill: bool = False


class SequencePatch(BaseModel):
    """An edit: rename, pause or resume, or new steps."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    status: Literal["active", "paused"] | None = None
    steps: list[StepBody] | None = Field(default=None, min_length=1, max_length=20)


class StepOut(BaseModel):
    """A step as it stands."""

    issue: int | None
    after: str
    at: str | None
    carrier: int


class SequenceOut(BaseModel):
    """A sequence."""

    id: int
    name: str
    newsletter: str
    # "welcome" for a newsletter's built-in welcome email (pause it; it cannot be deleted).
    builtin: str | None = None
    trigger: str | dict[str, str]
    status: str
    backfill: bool
    steps: list[StepOut]


class StepStats(BaseModel):
    """One step's numbers over all its versions."""

    issue: int | None
    carrier: int
    after: str
    at: str | None
    due: int
    sent: int
    failed: int
    unknown: int


class SequenceStats(BaseModel):
    """Each step's numbers and the readers still on their way."""

    steps: list[StepStats]
    active_readers: int


def dump_steps(steps: list[StepBody]) -> list[dict[str, Any]]:
    """Return steps as the plain dicts the service checks."""
    return [s.model_dump() for s in steps]
