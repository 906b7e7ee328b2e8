"""A newsletter's masthead: the name, sender and footer an email of it carries."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.models.newsletter import DEFAULT_NEWSLETTER_ID


@dataclass(frozen=True)
class Masthead:
    """What an email and a public page of one newsletter show, the settings filling gaps."""

    id: int
    slug: str
    name: str
    tagline: str
    from_address: str
    reply_to: str
    postal_address: str
    list_id: str
    is_default: bool
    several: bool = True  # the install has other newsletters too

    @property
    def unsubscribe_query(self) -> str:
        """Return the query an issue's unsubscribe URL carries: leave this newsletter only.

        With a single newsletter there is nothing else to keep: the link stays as it always
        was (`/unsubscribe/TOKEN`, leaving the list).
        """
        # Slugs are [a-z0-9-]: nothing to escape, and a constant per issue (render once).
        return f"?newsletter={self.slug}" if self.several else ""

    # Public URLs (paths): the default newsletter keeps the site's first URLs, every other one
    # lives under /n/<slug>. Slugs are [a-z0-9-], so the paths need no escaping.

    @property
    def home_path(self) -> str:
        """Return the path of this newsletter's home page."""
        return "/" if self.is_default else f"/n/{self.slug}"

    @property
    def archive_path(self) -> str:
        """Return the path of this newsletter's archive."""
        return "/archive" if self.is_default else f"/n/{self.slug}/archive"

    @property
    def feed_path(self) -> str:
        """Return the path of this newsletter's Atom feed."""
        return "/archive/feed.xml" if self.is_default else f"/n/{self.slug}/feed.xml"

    @property
    def subscribe_path(self) -> str:
        """Return the path of this newsletter's sign-up page."""
        return "/subscribe" if self.is_default else f"/n/{self.slug}/subscribe"

    def issue_path(self, issue_slug: str) -> str:
        """Return the path of an issue's web version in this newsletter's archive."""
        return f"{self.archive_path}/{issue_slug}"


def resolve(
    settings: Settings,
    *,
    id: int,
    slug: str,
    is_default: bool,
    name: str | None,
    tagline: str | None,
    from_address: str | None,
    reply_to: str | None,
    postal_address: str | None,
    list_id: str | None,
    several: bool = True,
) -> Masthead:
    """Return a newsletter's effective masthead: its own fields, or the settings' for gaps."""
    shown = name or settings.newsletter_name
    if list_id:
        the_list_id = list_id
    elif is_default:
        the_list_id = settings.list_id_header
    else:
        # Each list its own List-Id (RFC 2919): mail clients and filters tell them apart.
        the_list_id = f"{shown} <{slug}.newsletter.{settings.sender.domain}>"
    return Masthead(
        id=id,
        slug=slug,
        name=shown,
        tagline=tagline if tagline is not None else settings.newsletter_tagline,
        from_address=from_address or str(settings.sender),
        reply_to=reply_to or "",
        postal_address=postal_address or settings.postal_address,
        list_id=the_list_id,
        is_default=is_default,
        several=several,
    )


def from_settings(settings: Settings) -> Masthead:
    """Return the default newsletter's masthead when its row cannot be read (all settings)."""
    return resolve(
        settings,
        id=DEFAULT_NEWSLETTER_ID,
        slug="default",
        is_default=True,
        name=None,
        tagline=None,
        from_address=None,
        reply_to=None,
        postal_address=None,
        list_id=None,
        several=False,
    )
