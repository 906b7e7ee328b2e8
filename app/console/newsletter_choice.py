"""The newsletter a console page is scoped to: `?newsletter=<slug>` on its URL (none: all).

A query parameter rather than session state: two tabs can work on two newsletters at once
without one silently re-scoping the other, a scoped page can be bookmarked or shared, and a
form carries its newsletter itself, so what is saved never depends on a choice made elsewhere.
The nav keeps the parameter from page to page (see `render`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from app.audience import newsletters
from app.config import Settings
from app.issues.schemas import IssueIn

QUERY = "newsletter"


@dataclass(frozen=True)
class Choice:
    """One newsletter as the switcher lists it."""

    id: int
    slug: str
    name: str


@dataclass(frozen=True)
class Switcher:
    """The newsletters to switch between, the one chosen (None: all) and the page to reload."""

    options: list[Choice]
    chosen: Choice | None
    path: str

    @property
    def shown(self) -> bool:
        """Tell whether there is anything to switch between."""
        return len(self.options) > 1

    @property
    def chosen_id(self) -> int | None:
        """Return the chosen newsletter's id, or None for every newsletter."""
        return self.chosen.id if self.chosen else None

    def name_of(self, newsletter_id: int) -> str:
        """Return a newsletter's name (for a row of a list that spans several)."""
        return next((o.name for o in self.options if o.id == newsletter_id), "")


def options(session: Session, settings: Settings) -> list[Choice]:
    """Return every newsletter, the default first, named as readers see it."""
    return [
        Choice(row.id, row.slug, row.name or settings.newsletter_name)
        for row in newsletters.list_newsletters(session)
    ]


def switcher(session: Session, settings: Settings, path: str, slug: str | None) -> Switcher:
    """Return the switcher for a page; an unknown slug means every newsletter."""
    listed = options(session, settings)
    chosen = next((o for o in listed if slug and o.slug == slug), None)
    return Switcher(listed, chosen, path)


def query_of(slug: str | None) -> str:
    """Return `?newsletter=slug` for links that keep the choice (empty without one)."""
    return "?" + urlencode({QUERY: slug}) if slug and newsletters.SLUG.fullmatch(slug) else ""


def into(data: IssueIn, slug: str) -> IssueIn:
    """Return the issue to create in the newsletter chosen on the form (front matter aside)."""
    if not slug or data.newsletter:
        return data
    return data.model_copy(update={"newsletter": slug})


@dataclass(frozen=True)
class Standing:
    """A reader's standing with one newsletter, as their page lists it."""

    name: str
    slug: str
    status: str  # active | pending | unsubscribed | … ("" : never took it)


def reader_newsletters(session: Session, settings: Settings, subscriber_id: int) -> list[Standing]:
    """Return every newsletter with the reader's standing in it (the service's own reading)."""
    held = newsletters.subscriptions_of(session, subscriber_id)
    return [Standing(o.name, o.slug, held.get(o.slug, "")) for o in options(session, settings)]
