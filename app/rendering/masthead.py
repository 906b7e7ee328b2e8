"""A newsletter's masthead: the name, sender and footer an email of it carries."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings


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
