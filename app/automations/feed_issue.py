"""Turn new feed entries into an issue's blocks: a lead for the first, links for the rest."""

from __future__ import annotations

import re
from typing import Any

from app.automations.feed_parse import Entry

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|~])")


def escape_markdown(text: str) -> str:
    """Escape Markdown's punctuation, so a feed's text stays text."""
    return _MARKDOWN.sub(r"\\\1", text)


def issue_fields(feed_title: str, entries: list[Entry]) -> dict[str, Any]:
    """Return subject, preheader and blocks for an issue made of these entries (newest first)."""
    first, rest = entries[0], entries[1:]
    body = escape_markdown(first.summary) if first.summary else ""
    if first.link:
        body = f"{body}\n\n[Read the full story]({first.link})".strip()
    blocks: list[dict[str, Any]] = [
        {
            "type": "lead",
            "kicker": feed_title[:80] or "New",
            "title": first.title,
            "body": body or escape_markdown(first.title),
        }
    ]
    if rest:
        items = []
        for entry in rest:
            item: dict[str, Any] = {"title": entry.title}
            if entry.summary:
                item["description"] = entry.summary
            if entry.link:
                item["url"] = entry.link
            items.append(item)
        blocks.append({"type": "links", "title": "Also new", "items": items})
    more = f" and {len(rest)} more" if rest else ""
    return {
        "subject": first.title[:250],
        "preheader": f"{feed_title or 'New'}: {first.title}{more}"[:250],
        "blocks": blocks,
    }
