"""Markdown bodies to sanitised HTML, and sanitised HTML to wrapped plain text."""

from __future__ import annotations

import textwrap
from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "a", "ul", "ol", "li",
    "blockquote", "code", "pre", "h2", "h3", "h4", "hr", "img",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}
WIDTH = 72


def markdown_parser() -> MarkdownIt:
    """Return a CommonMark parser that escapes raw HTML instead of passing it through."""
    return MarkdownIt("commonmark", {"html": False}).disable("table", ignoreInvalid=True)


def sanitize(html: str) -> str:
    """Keep only a small set of tags and http(s)/mailto links."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener",
        strip_comments=True,
    )


def to_html(md: MarkdownIt, source: str) -> Markup:
    """Render Markdown to sanitised HTML, safe to drop into a template."""
    return Markup(sanitize(md.render(source)).strip())


class LinkList:
    """Numbers URLs for the text part; the same URL keeps its first number."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def ref(self, url: str) -> str:
        """Return the "[n]" marker for url, adding it to the list when new."""
        if url not in self.urls:
            self.urls.append(url)
        return f"[{self.urls.index(url) + 1}]"


def wrap(text: str, indent: str = "", first: str | None = None) -> str:
    """Wrap a paragraph at WIDTH columns without breaking words or URLs."""
    return textwrap.fill(
        " ".join(text.split()),
        width=WIDTH,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


class _TextMaker(HTMLParser):
    # Block elements end a paragraph; inline text accumulates until then.
    BLOCKS = frozenset({"p", "li", "blockquote", "h2", "h3", "h4", "pre", "ul", "ol", "hr"})

    def __init__(self, links: LinkList) -> None:
        super().__init__(convert_charrefs=True)
        self.links = links
        self.paragraphs: list[str] = []
        self.buffer: list[str] = []
        self.href: list[str | None] = []
        self.lists: list[list[int]] = []  # a counter per open <ol>, empty list for <ul>
        self.prefix = ""
        self.quote = 0
        self.pre = False

    def _flush(self) -> None:
        text = "".join(self.buffer)
        self.buffer = []
        if self.pre:
            if text.strip():
                self.paragraphs.append(textwrap.indent(text.rstrip("\n"), "    "))
            return
        if not text.strip():
            return
        depth = max(len(self.lists) - 1, 0)
        indent = "  " * depth + ("> " if self.quote else "")
        if self.prefix:
            first = indent + self.prefix
            self.paragraphs.append(wrap(text, indent + " " * len(self.prefix), first))
            self.prefix = ""
        else:
            self.paragraphs.append(wrap(text, indent))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self._flush()
        if tag == "a":
            self.href.append(dict(attrs).get("href"))
        elif tag == "br":
            self.buffer.append(" ")
        elif tag == "img":
            # The text part has no pictures: the alt text says what it shows, a link shows it.
            found = dict(attrs)
            alt = " ".join((found.get("alt") or "").split()) or "no description"
            src = found.get("src")
            self.buffer.append(f"[Image: {alt}]" + (f" {self.links.ref(src)}" if src else ""))
        elif tag in ("ul", "ol"):
            self.lists.append([0] if tag == "ol" else [])
        elif tag == "li" and self.lists:
            counter = self.lists[-1]
            if counter:
                counter[0] += 1
                self.prefix = f"{counter[0]}. "
            else:
                self.prefix = "* "
        elif tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre = True
        elif tag == "hr":
            self.paragraphs.append("-" * 24)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.href:
            href = self.href.pop()
            if href:
                self.buffer.append(" " + self.links.ref(href))
            return
        if tag in self.BLOCKS:
            self._flush()
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag == "blockquote":
            self.quote = max(self.quote - 1, 0)
        elif tag == "pre":
            self.pre = False

    def handle_data(self, data: str) -> None:
        self.buffer.append(data)


def html_to_text(html: str, links: LinkList) -> str:
    """Turn sanitised block HTML into wrapped paragraphs separated by blank lines."""
    maker = _TextMaker(links)
    maker.feed(html)
    maker.close()
    maker._flush()
    return "\n\n".join(maker.paragraphs)
