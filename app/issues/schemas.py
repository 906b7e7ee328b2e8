"""Request and response bodies of the editors' issue API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from datetime import date as dt_date
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from app.errors import InvalidInput, validation_message
from app.models.base import ID_MAX
from app.rendering.merge_tags import has_reader_tag

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _single_line(value: str | None) -> str | None:
    # Subject and preheader end up in headers or the inbox preview line: no line breaks.
    if value is not None and ("\r" in value or "\n" in value):
        raise ValueError("must be a single line (no line breaks)")
    return value


def _no_merge_tag(value: str | None) -> str | None:
    # Merge tags fill block text only: a per-reader subject or preheader is not supported.
    if value is not None and has_reader_tag(value):
        raise ValueError(
            "merge tags such as {{ name }} work in the blocks' text, not in the subject or "
            "preheader (only {{ newsletter }} does)"
        )
    return value


def _not_blank(value: str | None) -> str | None:
    # A subject of spaces shows as an empty line in every inbox (and looks like spam).
    if value is not None and not value.strip():
        raise ValueError("must contain more than spaces")
    return value


def _slug(value: str | None) -> str | None:
    # fullmatch: with match, "$" also matches before a final line break ("abc\n").
    if value is not None and not SLUG_RE.fullmatch(value):
        raise ValueError("use lower-case letters, digits and single hyphens, e.g. 2026-11-29-ai")
    return value


class IssueIn(BaseModel):
    """A new issue."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=250)
    preheader: str = Field(default="", max_length=250)
    slug: str | None = Field(default=None, max_length=120)
    blocks: list[dict[str, Any]] = Field(min_length=1)
    newsletter: str | None = Field(
        default=None,
        max_length=80,
        description="The newsletter's slug; the default one if left out.",
    )

    _lines = field_validator("subject", "preheader")(_single_line)
    _tags = field_validator("subject", "preheader")(_no_merge_tag)
    _blank = field_validator("subject")(_not_blank)
    _slugs = field_validator("slug")(_slug)


class IssuePatch(BaseModel):
    """Changes to a draft or scheduled issue; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, min_length=1, max_length=250)
    preheader: str | None = Field(default=None, max_length=250)
    slug: str | None = Field(default=None, max_length=120)
    blocks: list[dict[str, Any]] | None = Field(default=None, min_length=1)
    send_at: datetime | None = None
    newsletter: str | None = Field(
        default=None,
        max_length=80,
        description="Move a draft to this newsletter (its slug; null: the default one).",
    )

    _lines = field_validator("subject", "preheader")(_single_line)
    _tags = field_validator("subject", "preheader")(_no_merge_tag)
    _blank = field_validator("subject")(_not_blank)
    _slugs = field_validator("slug")(_slug)

    @field_validator("send_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)


def _as_utc(value: datetime | None) -> datetime | None:
    # ISO 8601 without an offset is read as UTC, the only zone a cron server can agree on.
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+14:00 is a valid ISO 8601 text but before year 1 in UTC.
        raise ValueError("is out of the range of dates that can be scheduled") from None


# The days a local-time send can name: each has its moment in every zone in UTC's calendar.
LOCAL_DAYS = (dt_date(1, 1, 2), dt_date(9999, 12, 30))


class SendIn(BaseModel):
    """Optional body of POST /issues/{id}/send."""

    model_config = ConfigDict(extra="forbid")

    send_at: datetime | None = None
    # A local-time send: each reader at this wall-clock time on this day, in their own zone.
    local_time: time | None = Field(default=None, examples=["06:00"])
    date: dt_date | None = Field(default=None, examples=["2026-12-01"])
    # Part of the newsletter: a saved segment's id, or a filter (docs/segments.md).
    segment: int | None = Field(default=None, ge=1, le=ID_MAX)
    filter: str | None = Field(default=None, max_length=2000)
    # A subject A/B test (app/automations/abtests.py checks it): subjects, sample, decision.
    ab: dict[str, Any] | None = None

    @field_validator("send_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)

    @field_validator("local_time")
    @classmethod
    def _wall_clock(cls, value: time | None) -> time | None:
        if value is not None and (value.tzinfo is not None or value.second or value.microsecond):
            raise ValueError("give local_time as HH:MM, without a zone: each reader's own applies")
        return value

    @field_validator("date")
    @classmethod
    def _every_zone_has_it(cls, value: dt_date | None) -> dt_date | None:
        # Each reader's moment is this day in their zone, up to 14 hours either side of UTC:
        # on the calendar's first or last day it would fall outside it (year 0 or 10000).
        if value is not None and not LOCAL_DAYS[0] <= value <= LOCAL_DAYS[1]:
            first, last = (d.isoformat() for d in LOCAL_DAYS)
            raise ValueError(f"choose a day from {first} to {last}")
        return value

    @model_validator(mode="after")
    def _one_way(self) -> SendIn:
        if (self.local_time is None) != (self.date is None):
            raise ValueError('local_time and date go together, e.g. "06:00" and "2026-12-01"')
        if self.local_time is not None and self.send_at is not None:
            raise ValueError("use either send_at or local_time with date, not both")
        if self.segment is not None and self.filter is not None:
            raise ValueError("use either segment or filter, not both")
        return self


def read_send_in(**fields: Any) -> SendIn:
    """Build the send input from a form's or the command line's fields, as the API reads it.

    Blank fields are left out; a refused value is an InvalidInput in the API's own words.
    """
    given = {k: v for k, v in fields.items() if v is not None and v != ""}
    try:
        return SendIn.model_validate(given)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc.errors())) from None


class TestSendIn(BaseModel):
    """Body of POST /issues/{id}/test: who gets a [TEST] copy."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"to": ["editor@example.org"]}]}
    )

    to: list[str] = Field(
        min_length=1,
        max_length=10,
        description="Email addresses (1 to 10) that each get a copy with the subject prefixed "
        "[TEST]; test copies are not counted as deliveries.",
    )


class TestSendOut(BaseModel):
    """Answer of POST /issues/{id}/test."""

    id: int
    queued: int = Field(description="How many test copies were queued.")


class IssueOut(BaseModel):
    """An issue as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    subject: str
    preheader: str
    status: str
    blocks: list[dict[str, Any]]
    send_at: datetime | None
    recipients: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    version: int = Field(description="Counts edits; the ETag of GET /issues/{id} carries it.")
    newsletter_id: int = Field(description="The newsletter the issue belongs to.")


class SendOut(BaseModel):
    """Answer of POST /issues/{id}/send."""

    id: int
    status: str
    recipients: int
    send_at: datetime | None = None


class RequeuedOut(BaseModel):
    """Answer of POST /issues/{id}/resend-unknown."""

    requeued: int


class BounceCounts(BaseModel):
    """Asynchronous bounces and complaints that came back for one issue, by kind."""

    hard: int
    soft: int
    complaints: int
    policy_alerts: int
    delayed: int


class LinkClicks(BaseModel):
    """Clicks on one link of an issue (app.clicks): people, scanners and known readers."""

    url: str
    count: int
    scanner_clicks: int
    readers: int


class SendStats(BaseModel):
    """Answer of GET /issues/{id}/stats: delivery counts, status, rate, ETA, bounces, clicks.

    Open to extra keys: a send that is an A/B test also carries `variants`.
    """

    model_config = ConfigDict(extra="allow")

    recipients: int = Field(description="All deliveries of the issue (the sum of the counts).")
    pending: int
    sending: int
    sent: int
    retry: int
    failed: int
    unknown: int
    cancelled: int
    status: str
    pause_reason: str | None
    rate_per_second: float = Field(description="Messages sent per second over the last minute.")
    eta_seconds: int | None = Field(description="Seconds until the last reader is due and sent.")
    not_yet_due: int = Field(description="Readers of a local-time send still waiting for theirs.")
    next_due_at: datetime | None
    local_time: str | None
    local_date: str | None
    bounces: BounceCounts
    alerts: list[str] = Field(description="Sentences a person can act on (relay, policy).")
    clicks: list[LinkClicks]

    @property
    def done(self) -> int:
        """Return how many deliveries have an outcome: the progress bar's value."""
        return self.sent + self.failed + self.unknown + self.cancelled

    @property
    def waiting(self) -> int:
        """Return how many deliveries still wait to be sent or retried."""
        return self.pending + self.sending + self.retry
