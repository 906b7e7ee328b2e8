"""Read a fetched feed (feedparser) into entries with a stable key and sanitised text."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from typing import Any

import feedparser
import nh3

SUMMARY_MAX = 400


class FeedMalformed(Exception):
    """The body is not an RSS or Atom feed."""


@dataclass(frozen=True)
class Entry:
    """One entry: its key (SHA-256 of guid, id or link), title, link and a plain summary."""

    key: str
    title: str
    link: str
    summary: str


@dataclass(frozen=True)
class ParsedFeed:
    """The feed's title and its entries, newest first as the feed lists them."""

    title: str
    entries: list[Entry]


def plain(markup: str, limit: int) -> str:
    """Return the text of some HTML: tags dropped (nh3), entities decoded, cut at a word."""
    text = html.unescape(nh3.clean(markup or "", tags=set()))
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:.") + "…"


def _link(entry: Any) -> str:
    link = str(entry.get("link") or "")
    return link if link.startswith(("https://", "http://")) and len(link) <= 2000 else ""


def parse_feed(body: bytes) -> ParsedFeed:
    """Parse a feed; FeedMalformed when it is not one."""
    parsed = feedparser.parse(body)
    if parsed.get("bozo") and not parsed.entries and not parsed.feed.get("title"):
        raise FeedMalformed(f"Not an RSS or Atom feed ({parsed.get('bozo_exception')})"[:300])
    if not parsed.get("version") and not parsed.entries:
        raise FeedMalformed("Not an RSS or Atom feed.")
    entries = []
    for item in parsed.entries:
        ident = str(item.get("id") or item.get("guid") or "") or _link(item)
        if not ident:
            continue  # nothing names it: it could not be told apart from the next poll's
        entries.append(
            Entry(
                key=hashlib.sha256(ident.encode()).hexdigest(),
                title=plain(str(item.get("title") or ""), 200) or "Untitled",
                link=_link(item),
                summary=plain(
                    str(item.get("summary") or item.get("description") or ""), SUMMARY_MAX
                ),
            )
        )
    return ParsedFeed(plain(str(parsed.feed.get("title") or ""), 200), entries)
