"""Read a fetched feed (feedparser) into entries with a stable key and sanitised text.

A feed's text is data: it never becomes a merge tag, and a link an issue cannot hold (longer
than a block's URL may be) is left out of the entry rather than failing the whole issue.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import feedparser
import nh3

SUMMARY_MAX = 400
KEY_LINK_MAX = 2000  # a link names an entry (its key) up to this length
LINK_MAX = 900  # the longest URL an issue's block takes (app.rendering.blocks.Url)
# Kept as written in a link; the rest (spaces, quotes, "<", braces) is percent-encoded, which
# a block's URL accepts; "%" stays so an encoded link is not encoded twice.
_URL_SAFE = "%/:?#[]@!$&'()*+,;=~"
# Two braces in a row open or close a merge tag; a space between them keeps them text.
_BRACE_PAIR = re.compile(r"([{}])(?=\1)")


class FeedMalformed(Exception):
    """The body is not an RSS or Atom feed."""


@dataclass(frozen=True)
class Entry:
    """One entry: its key (SHA-256 of guid, id or link), title, link and a plain summary."""

    key: str
    title: str
    link: str  # as an issue can show it; "" when there is none or it is too long
    summary: str
    dropped_link: str = ""  # the link an issue could not hold, for the record and the alert


@dataclass(frozen=True)
class ParsedFeed:
    """The feed's title and its entries, newest first as the feed lists them."""

    title: str
    entries: list[Entry]


def inert_braces(text: str) -> str:
    """Return text with "{{" and "}}" spaced apart, so no merge tag can be read from it."""
    return _BRACE_PAIR.sub(r"\1 ", text)


def plain(markup: str, limit: int) -> str:
    """Return the text of some HTML: tags dropped (nh3), entities decoded, cut at a word."""
    text = html.unescape(nh3.clean(markup or "", tags=set()))
    # Plain-text fields (titles, the subject) have no escape for a literal "{{".
    text = " ".join(inert_braces(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:.") + "…"


def _link(entry: Any) -> str:
    link = str(entry.get("link") or "")
    return link if link.startswith(("https://", "http://")) and len(link) <= KEY_LINK_MAX else ""


def _shown(link: str) -> str:
    """Return a link as an issue can hold it (spaces, quotes, braces encoded), or ""."""
    encoded = quote(link, safe=_URL_SAFE)
    return encoded if len(encoded) <= LINK_MAX else ""


def parse_feed(body: bytes) -> ParsedFeed:
    """Parse a feed; FeedMalformed when it is not one."""
    parsed = feedparser.parse(body)
    if parsed.get("bozo") and not parsed.entries and not parsed.feed.get("title"):
        raise FeedMalformed(f"Not an RSS or Atom feed ({parsed.get('bozo_exception')})"[:300])
    if not parsed.get("version") and not parsed.entries:
        raise FeedMalformed("Not an RSS or Atom feed.")
    entries = []
    for item in parsed.entries:
        link = _link(item)
        ident = str(item.get("id") or item.get("guid") or "") or link
        if not ident:
            continue  # nothing names it: it could not be told apart from the next poll's
        shown = _shown(link)
        entries.append(
            Entry(
                key=hashlib.sha256(ident.encode()).hexdigest(),
                title=plain(str(item.get("title") or ""), 200) or "Untitled",
                link=shown,
                summary=plain(
                    str(item.get("summary") or item.get("description") or ""), SUMMARY_MAX
                ),
                dropped_link="" if shown else link,
            )
        )
    return ParsedFeed(plain(str(parsed.feed.get("title") or ""), 200), entries)
