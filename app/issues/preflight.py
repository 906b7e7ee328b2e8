"""The preflight's content rules: subject length, link text, images and alt text, text part.

Cheap and pure (no network): they run in every check and in the send gate. The slow rule,
links that do not answer, lives in app.issues.linkcheck and never gates a send.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from markdown_it import MarkdownIt

from app.issues.check import Finding
from app.issues.locate import IssueLines
from app.rendering.markdown import markdown_parser

SUBJECT_MIN = 10
# Longer subjects are cut in most inboxes (and RFC 5322 recommends lines of 78 characters).
SUBJECT_MAX = 78
HEAVY_IMAGE_BYTES = 1024 * 1024
# What the editor's upload leaves when no alt text was given: visible, and refused here.
ALT_PLACEHOLDER = "DESCRIBE THIS IMAGE"
# Link texts that say nothing out of context (screen readers list links by their text alone).
VAGUE_LINK_TEXT = frozenset(
    {
        "click here", "here", "click", "read more", "more", "this", "link", "this link",
        "learn more", "go", "continue", "see more", "details", "click this",
    }
)  # fmt: skip
_BARE_URL = re.compile(r"^(https?://|www\.)\S+$", re.IGNORECASE)
_MARKDOWN_FIELDS = ("body", "description", "note", "intro", "summary")
# Item keys that are the text of the item's `url` link, per list type.
_TITLE_KEYS = ("title", "name")


@dataclass(frozen=True)
class Image:
    """An image in the issue: where it is, its address and its alt text."""

    block: int
    url: str
    alt: str


@dataclass(frozen=True)
class Link:
    """A link in the issue with the words a reader clicks."""

    block: int
    url: str
    text: str


@functools.cache
def _parser() -> MarkdownIt:
    # Built once: a parser is costly to build, and parsing does not change it.
    return markdown_parser()


def _inline_tokens(text: str) -> list[Any]:
    md = _parser()
    out: list[Any] = []
    for token in md.parse(text):
        out.extend(token.children or [])
    return out


def _markdown_parts(text: str, block: int, links: list[Link], images: list[Image]) -> None:
    href: str | None = None
    words: list[str] = []
    for token in _inline_tokens(text):
        if token.type == "image":
            alt = "".join(c.content for c in token.children or [])
            images.append(Image(block, str(token.attrGet("src") or ""), alt))
            if href is not None:
                words.append(alt)
        elif token.type == "link_open":
            href, words = str(token.attrGet("href") or ""), []
        elif token.type == "link_close" and href is not None:
            links.append(Link(block, href, "".join(words)))
            href = None
        elif href is not None and token.type in ("text", "code_inline"):
            words.append(token.content)


def collect(blocks: list[dict[str, Any]]) -> tuple[list[Link], list[Image]]:
    """Return every link (with its text) and every image of the blocks, numbered from 1."""
    links: list[Link] = []
    images: list[Image] = []

    def walk(node: Any, number: int) -> None:
        if isinstance(node, dict):
            if node.get("type") == "image" and isinstance(node.get("url"), str):
                images.append(Image(number, node["url"], str(node.get("alt") or "")))
                if isinstance(node.get("link"), str):
                    links.append(Link(number, node["link"], str(node.get("alt") or "")))
                return
            url = node.get("url")
            if isinstance(url, str):
                title = next((node[k] for k in _TITLE_KEYS if isinstance(node.get(k), str)), url)
                links.append(Link(number, url, title))
            for key, value in node.items():
                if key in _MARKDOWN_FIELDS and isinstance(value, str):
                    _markdown_parts(value, number, links, images)
                elif isinstance(value, dict | list):
                    walk(value, number)
        elif isinstance(node, list):
            for item in node:
                walk(item, number)

    for number, block in enumerate(blocks, start=1):
        walk(block, number)
    return links, images


def _subject(subject: str) -> list[Finding]:
    n = len(subject.strip())
    if n < SUBJECT_MIN:
        return [
            Finding(
                "warning",
                "subject_short",
                f"The subject has {n} characters; under {SUBJECT_MIN} it tells readers little "
                "and looks like spam to some filters.",
                line=2,
            )
        ]
    if n > SUBJECT_MAX:
        return [
            Finding(
                "warning",
                "subject_long",
                f"The subject has {n} characters; inboxes cut it after about {SUBJECT_MAX}, "
                "so put the important words first.",
                line=2,
            )
        ]
    return []


def _link_text(links: list[Link], lines: IssueLines) -> list[Finding]:
    found: list[Finding] = []
    for link in links:
        text = " ".join(link.text.split())
        if text.lower().strip(".!:…> ") in VAGUE_LINK_TEXT:
            why = f"the link text {text!r} says nothing on its own"
        elif _BARE_URL.match(text):
            why = "a bare web address is the link text"
        else:
            continue
        found.append(
            Finding(
                "warning",
                "vague_link_text",
                f"In block {link.block}, {why} ({link.url}); name what the reader gets, "
                "e.g. 'the full report'. Screen readers list links by their text alone.",
                block=link.block,
                line=lines.find(link.block, text or link.url),
            )
        )
    return found


def _images(
    images: list[Image], lines: IssueLines, size_of: Callable[[str], int | None] | None
) -> list[Finding]:
    found: list[Finding] = []
    for image in images:
        alt = " ".join(image.alt.split())
        if not alt or alt.upper().startswith(ALT_PLACEHOLDER):
            found.append(
                Finding(
                    "error",
                    "image_no_alt",
                    f"The image {image.url} in block {image.block} has no alt text; readers with "
                    "images off or a screen reader get nothing. Describe what it shows.",
                    block=image.block,
                    line=lines.find(image.block, image.url),
                )
            )
        size = size_of(image.url) if size_of else None
        if size is not None and size > HEAVY_IMAGE_BYTES:
            found.append(heavy_image(image.block, image.url, size, lines))
    return found


def heavy_image(block: int | None, url: str, size: int, lines: IssueLines) -> Finding:
    """Return the warning for an image over HEAVY_IMAGE_BYTES."""
    return Finding(
        "warning",
        "image_heavy",
        f"The image {url} weighs {size / 1024 / 1024:.1f} MB; over 1 MB it loads slowly on "
        "phones and some clients block it. Upload it again (uploads are resized) or shrink it.",
        block=block,
        line=lines.find(block, url),
    )


def _text_part(text: str | None) -> list[Finding]:
    # The text part is masthead, body and footer; only the body says anything.
    body = (text or "").split("\n-- \n", 1)[0].split("=" * 72, 1)[-1]
    if text is None or not text.strip() or not body.strip():
        return [
            Finding(
                "error",
                "text_part_empty",
                "The plain-text part of the email is empty; text-only readers and some spam "
                "filters see nothing. Add a block with text.",
            )
        ]
    return []


def content_findings(
    subject: str,
    found: tuple[list[Link], list[Image]],
    text: str | None,
    lines: IssueLines,
    size_of: Callable[[str], int | None] | None = None,
) -> list[Finding]:
    """Return the findings of the content rules (over `collect`'s links and images)."""
    links, images = found
    return [
        *_subject(subject),
        *_images(images, lines, size_of),
        *_link_text(links, lines),
        *_text_part(text),
    ]


def network_targets(
    found: tuple[list[Link], list[Image]], own_prefix: str
) -> list[tuple[int, str]]:
    """Return (block, url) of every web link and image worth fetching (not our own server's)."""
    links, images = found
    seen: set[str] = set()
    out: list[tuple[int, str]] = []
    for block, url in [(x.block, x.url) for x in links] + [(x.block, x.url) for x in images]:
        if url in seen or not url.lower().startswith(("http://", "https://")):
            continue
        if url.startswith(own_prefix):
            continue  # this server: it answers if the reader can read the issue at all
        seen.add(url)
        out.append((block, url))
    return out


def link_findings(
    targets: list[tuple[int, str]],
    statuses: dict[str, Any],
    image_urls: set[str],
    lines: IssueLines,
) -> list[Finding]:
    """Turn link-check results (app.issues.linkcheck.LinkStatus) into warnings."""
    found: list[Finding] = []
    for block, url in targets:
        status = statuses.get(url)
        if status is None:
            continue
        line = lines.find(block, url)
        if status.refused:
            found.append(
                Finding(
                    "warning",
                    "link_not_checked",
                    f"The link {url} was not checked: {status.error}",
                    block=block,
                    line=line,
                )
            )
        elif status.status is None:
            found.append(
                Finding(
                    "warning",
                    "link_no_answer",
                    f"The link {url} does not answer ({status.error}).",
                    block=block,
                    line=line,
                )
            )
        elif status.status >= 400:
            found.append(
                Finding(
                    "warning",
                    "link_broken",
                    f"The link {url} answers {status.status}"
                    f"{' (not found)' if status.status in (404, 410) else ''}.",
                    block=block,
                    line=line,
                )
            )
        elif url in image_urls and (status.length or 0) > HEAVY_IMAGE_BYTES:
            found.append(heavy_image(block, url, status.length or 0, lines))
    return found


_URL_IN_MESSAGE = re.compile(r"(?:https?|mailto):[^\s'\"]+")


def locate(findings: list[Finding], lines: IssueLines) -> list[Finding]:
    """Give findings that name a block but no line a line: where the URL they quote is, else
    the block's first line."""
    out: list[Finding] = []
    for f in findings:
        if f.block and f.line is None:
            quoted = _URL_IN_MESSAGE.search(f.message)
            f = replace(f, line=lines.find(f.block, quoted.group(0) if quoted else ""))
        out.append(f)
    return out
