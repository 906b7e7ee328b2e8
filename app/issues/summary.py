"""What the archive, the home page and the feed say about an issue: its own date and an excerpt."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from app.models import Issue
from app.rendering.merge_tags import fill_newsletter, show_defaults

EXCERPT_CHARS = 220
# How editors write the masthead date; the first format that parses wins.
_DATE_FORMATS = (
    "%A, %d %B %Y",  # Tuesday, 3 March 2026
    "%d %B %Y",
    "%A %d %B %Y",
    "%A, %B %d, %Y",  # Tuesday, March 3, 2026
    "%B %d, %Y",
    "%Y-%m-%d",
    "%d %b %Y",
    "%b %d, %Y",
)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKS = re.compile(r"[*_`#>~]+")


@dataclass(frozen=True)
class IssueEntry:
    """One issue as the reader-facing lists show it."""

    slug: str
    title: str
    date_text: str  # what the masthead says, or the send date written out
    from_masthead: bool  # date_text is the masthead's own words
    day: date | None  # the calendar day, when known
    when: datetime  # for sorting and the feed: the issue's day, else when its send started
    excerpt: str


def issue_date_text(blocks: list[dict[str, Any]]) -> str:
    """Return the masthead's date as written, or ""."""
    for block in blocks:
        if block.get("type") == "masthead" and block.get("date"):
            return str(block["date"]).strip()
    return ""


def parse_day(text: str) -> date | None:
    """Return the calendar day a masthead date names, or None when it is free text."""
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text.strip())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    return None


def excerpt(
    blocks: list[dict[str, Any]],
    preheader: str = "",
    limit: int = EXCERPT_CHARS,
    newsletter: str = "",
) -> str:
    """Return a plain-text excerpt: the lead's summary, else the preheader, else the first text.

    `{{ newsletter }}` reads as the newsletter's name, as in the email.
    """
    lead = next((b for b in blocks if b.get("type") == "lead"), None)
    candidates = [
        lead.get("summary") if lead else None,
        preheader,
        *(b.get("body") for b in blocks if b.get("type") in ("lead", "article", "markdown")),
    ]
    for text in candidates:
        if isinstance(text, str) and text.strip():
            # Public lists show what a reader without a name or attributes would read.
            return _shorten(_plain(show_defaults(fill_newsletter(text, newsletter))), limit)
    return ""


def entry(issue: Issue, newsletter: str) -> IssueEntry:
    """Return the list entry of a published issue; the masthead's date wins over the send date.

    newsletter: its name, for `{{ newsletter }}` in the subject and the excerpt (as the email
    and the page's own title read).
    """
    started = issue.started_at or issue.send_at or issue.created_at
    written = issue_date_text(issue.blocks)
    day = parse_day(written) if written else None
    if not written:
        day = started.date()
        written = f"{day.strftime('%A')}, {day.day} {day.strftime('%B %Y')}"
    when = datetime(day.year, day.month, day.day, tzinfo=UTC) if day else started
    return IssueEntry(
        slug=issue.slug,
        title=fill_newsletter(issue.subject, newsletter),
        date_text=written,
        from_masthead=bool(issue_date_text(issue.blocks)),
        day=day,
        when=when,
        excerpt=excerpt(issue.blocks, issue.preheader, newsletter=newsletter),
    )


def _plain(markdown: str) -> str:
    text = _LINK.sub(r"\1", markdown)
    text = _MARKS.sub("", text)
    return " ".join(text.split())


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.—-")
    return cut + "…"
