"""The text/plain part: the same issue, written to read well on its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.rendering.markdown import WIDTH, LinkList, html_to_text, wrap

Block = dict[str, Any]


def heading(title: str, char: str) -> str:
    """Return title wrapped and underlined with char to the width of its longest line."""
    lines = wrap(title).splitlines()
    return "\n".join([*lines, char * max(len(line) for line in lines)])


def _linked(title: str, url: str | None, links: LinkList) -> str:
    return f"{title} {links.ref(url)}" if url else title


def _bullet(text: str, description: str | None = None) -> str:
    out = wrap(text, "  ", "* ")
    if description:
        out += "\n" + wrap(description, "  ")
    return out


def _masthead(b: Block, links: LinkList, ctx: dict[str, Any]) -> list[str]:
    parts = [ctx["name"].upper(), ctx["tagline"]]
    if b.get("date"):
        parts.append(b["date"])
    return ["\n".join([*parts, "=" * WIDTH])]


def _story(b: Block, links: LinkList, ctx: dict[str, Any]) -> list[str]:
    out = [b["kicker"].upper()] if b.get("kicker") else []
    out.append(heading(b["title"], "=" if b["type"] == "lead" else "-"))
    if b.get("summary"):
        out.append(wrap(b["summary"]))
    out.append(html_to_text(b["body_html"], links))
    return out


def _stats(b: Block, links: LinkList, ctx: dict[str, Any]) -> list[str]:
    items = [_bullet(f"{i['value']}: {i['label']}") for i in b["items"]]
    return [heading(b["title"], "-"), "\n".join(items)]


def _items(b: Block, links: LinkList, ctx: dict[str, Any]) -> list[str]:
    out = [heading(b["title"], "-")]
    if b.get("intro"):
        out.append(wrap(b["intro"]))
    out.append(
        "\n\n".join(
            _bullet(_linked(i["title"], i.get("url"), links), i.get("description"))
            for i in b["items"]
        )
    )
    return out


def _opinion(b: Block, links: LinkList, ctx: dict[str, Any]) -> list[str]:
    out = [heading(b["title"], "-")]
    for piece in b["items"]:
        out.append(piece["title"].upper())
        out.append(html_to_text(piece["body_html"], links))
    return out


def _trending(b: Block, links: LinkList, ctx: dict[str, Any]) -> list[str]:
    out = [heading(b["title"], "-")]
    if b.get("intro"):
        out.append(wrap(b["intro"]))
    for group in b["groups"]:
        label = group["source"] + (f": {group['label']}" if group.get("label") else "")
        rows = []
        for i in group["items"]:
            title = i["title"] + (f" ({i['metric']})" if i.get("metric") else "")
            rows.append(_bullet(_linked(title, i.get("url"), links), i.get("description")))
        out.append(label.upper() + "\n\n" + "\n".join(rows))
    return out


def _movers(b: Block, links: LinkList, ctx: dict[str, Any]) -> list[str]:
    out = [heading(b["title"], "-")]
    if b.get("intro"):
        out.append(wrap(b["intro"]))
    rows = [
        _bullet(_linked(f"{i['name']} {i['change']}", i.get("url"), links), i.get("note"))
        for i in b["items"]
    ]
    out.append("\n".join(rows))
    return out


def _subscribe(b: Block, links: LinkList, ctx: dict[str, Any]) -> list[str]:
    return [
        heading(b["title"], "-"),
        html_to_text(b["body_html"], links),
        f"Subscribe: {ctx['subscribe_url']}",
    ]


def _markdown(b: Block, links: LinkList, ctx: dict[str, Any]) -> list[str]:
    return [html_to_text(b["body_html"], links)]


def _image(b: Block, links: LinkList, ctx: dict[str, Any]) -> list[str]:
    alt = b.get("alt") or "no description"
    out = [wrap(f"[Image: {alt}] {links.ref(b['url'])}")]
    if b.get("caption"):
        out.append(wrap(b["caption"]))
    if b.get("link"):
        out.append(f"Link: {links.ref(b['link'])}")
    return ["\n".join(out)]


_WRITERS: dict[str, Callable[[Block, LinkList, dict[str, Any]], list[str]]] = {
    "masthead": _masthead,
    "lead": _story,
    "article": _story,
    "stats": _stats,
    "cards": _items,
    "links": _items,
    "opinion": _opinion,
    "trending": _trending,
    "movers": _movers,
    "subscribe": _subscribe,
    "markdown": _markdown,
    "image": _image,
}


def issue_text(blocks: list[Block], ctx: dict[str, Any]) -> str:
    """Return the text part for prepared blocks; ctx carries name, tagline and footer URLs."""
    links = LinkList()
    parts: list[str] = []
    if not any(b["type"] == "masthead" for b in blocks):
        parts.extend(_masthead({"type": "masthead"}, links, ctx))
    for block in blocks:
        parts.extend(p for p in _WRITERS[block["type"]](block, links, ctx) if p.strip())
    if links.urls:
        refs = [f"[{n}] {url}" for n, url in enumerate(links.urls, start=1)]
        parts.append("Links:\n" + "\n".join(refs))
    parts.append(footer_text(ctx))
    return "\n\n".join(parts) + "\n"


def footer_text(ctx: dict[str, Any]) -> str:
    """Return the text footer: why you get this, then the full per-subscriber URLs."""
    why = wrap(f"You are receiving {ctx['name']} because you subscribed at {ctx['subscribe_url']}.")
    return "\n".join(
        [
            "-- ",
            why,
            "",
            f"Read on the web: {ctx['web_url']}",
            f"Manage preferences: {ctx['preferences_url']}",
            f"Unsubscribe: {ctx['unsubscribe_url']}",
            *([wrap(ctx["postal_address"])] if ctx.get("postal_address") else []),
        ]
    )
