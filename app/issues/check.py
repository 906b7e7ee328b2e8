"""Pre-send check: what would hurt delivery or break the issue, as sentences a person reads.

Links are checked for syntax only: fetching them would send traffic on every check (and this
service may run where outbound HTTP is not allowed).
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from markdown_it import MarkdownIt

from app.config import Settings
from app.config.loading import dkim_alignment_error
from app.rendering.markdown import markdown_parser
from app.rendering.masthead import Masthead

WARN_BYTES = 90 * 1024
# Gmail clips messages whose HTML is over 102 KB, hiding the footer with the unsubscribe link.
CLIP_BYTES = 102 * 1024
MAX_LINK_FINDINGS = 10
_HOST = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}")
_HREF = re.compile(r"""href\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_MARKDOWN_FIELDS = ("body", "description", "note")


class IssueLike(Protocol):
    """What the check reads from an issue (the model or an input schema)."""

    subject: str
    preheader: str
    blocks: Any


@dataclass(frozen=True)
class Finding:
    """One problem: `error` blocks a send, `warning` does not.

    `block` numbers the block it concerns from 1 (None: the whole issue); `line` is the line of
    the issue's Markdown form (GET /issues/{id}/markdown, the console's editor), when known.
    """

    level: Literal["error", "warning"]
    code: str
    message: str
    block: int | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape."""
        return asdict(self)


def check_issue(
    settings: Settings,
    compiled_html_size: int,
    issue: IssueLike,
    rendered_html: str,
    head: Masthead | None = None,
) -> list[Finding]:
    """Return every finding for an issue about to be sent, errors first.

    `head` is the issue's newsletter's masthead: its own From and postal address (set in the
    console) count, the settings only fill its gaps.
    """
    found: list[Finding] = []
    found += _size(compiled_html_size)
    if not (issue.preheader or "").strip():
        found.append(
            Finding(
                "warning",
                "no_preheader",
                "The issue has no preheader; inboxes will show the first words of the page "
                "(often the masthead) next to the subject instead.",
            )
        )
    found += _links(issue.blocks, f"{settings.base_url}/")
    found += _sender(settings, head)
    postal = head.postal_address if head is not None else settings.postal_address
    if not postal:
        found.append(
            Finding(
                "warning",
                "no_postal_address",
                "The newsletter has no postal address (set it in the console's newsletter "
                "settings, or MORNINGPOST_POSTAL_ADDRESS): the footer carries none, which "
                "CAN-SPAM requires in every commercial email and many readers expect.",
            )
        )
    if not any("/unsubscribe/" in href for href in _HREF.findall(rendered_html)):
        found.append(
            Finding(
                "error",
                "no_unsubscribe_link",
                "The rendered email has no unsubscribe link; the law and the big mailbox "
                "providers require one in every issue.",
            )
        )
    return sorted(found, key=lambda f: f.level != "error")


def _size(size: int) -> list[Finding]:
    kb = size / 1024
    if size > CLIP_BYTES:
        return [
            Finding(
                "error",
                "html_too_large",
                f"The email's HTML is {kb:.0f} KB; Gmail cuts off anything over 102 KB, hiding "
                "the end of the issue and its unsubscribe link. Shorten it or split it.",
            )
        ]
    if size > WARN_BYTES:
        return [
            Finding(
                "warning",
                "html_large",
                f"The email's HTML is {kb:.0f} KB, close to the 102 KB at which Gmail cuts "
                "messages off.",
            )
        ]
    return []


def _sender(settings: Settings, head: Masthead | None) -> list[Finding]:
    found: list[Finding] = []
    # A newsletter's own From (its row) counts as set; the masthead falls back to the settings'.
    own_from = head is not None and head.from_address != str(settings.sender)
    if not settings.from_address and not own_from:
        found.append(
            Finding(
                "warning",
                "default_from",
                f"MORNINGPOST_FROM is not set, so the issue would go out from the made-up "
                f"address {settings.sender}; replies and bounces would be lost.",
            )
        )
    misaligned = dkim_alignment_error(settings)
    if misaligned:
        found.append(
            Finding(
                "error",
                "dkim_misaligned",
                f"The DKIM signature would not match the From address, so DMARC checks fail "
                f"and mail may be rejected ({misaligned}).",
            )
        )
    elif not settings.dkim_enabled:
        found.append(
            Finding(
                "warning",
                "dkim_off",
                "Messages are not DKIM-signed; Gmail and Yahoo expect bulk senders to sign. "
                "Set MORNINGPOST_DKIM_SELECTOR, _DOMAIN and _PRIVATE_KEY_PATH.",
            )
        )
    return found


@functools.cache
def _parser() -> MarkdownIt:
    # Built once: a parser is costly to build, and parsing does not change it.
    return markdown_parser()


def block_links(blocks: Any) -> list[str]:
    """Return every link target in the blocks: url fields and links inside Markdown bodies."""
    md = _parser()
    out: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str):
            if key == "url":
                out.append(node.strip())
            elif key in _MARKDOWN_FIELDS:
                for token in md.parseInline(node):
                    for child in token.children or []:
                        if child.type == "link_open":
                            out.append(str(child.attrGet("href") or ""))

    walk(blocks)
    return out


def link_problem(url: str) -> str | None:
    """Return why a link target cannot work in an email, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "cannot be parsed"
    del port
    scheme = parts.scheme.lower()
    if scheme == "mailto":
        return None if "@" in parts.path else "has no address after mailto:"
    if scheme not in ("http", "https"):
        return "is not an absolute http(s) or mailto: link (relative links go nowhere in email)"
    host = (parts.hostname or "").lower()
    if not host:
        return "has no host name"
    if not _HOST.fullmatch(host.rstrip(".")):
        return f"has an invalid host name {host!r}"
    return None


def _links(blocks: Any, own_prefix: str) -> list[Finding]:
    found: list[Finding] = []
    # This server's own addresses (uploaded images, the archive) are judged like the footer's
    # links: BASE_URL is the operator's choice, and a development one is often an IP address.
    seen: set[str] = set()
    numbered = list(enumerate(blocks, start=1)) if isinstance(blocks, list) else [(None, blocks)]
    for number, block in numbered:
        for url in block_links([block]):
            if url in seen or url.startswith(own_prefix):
                continue
            seen.add(url)
            problem = link_problem(url)
            if problem:
                message = f"The link {url!r} {problem}."
                found.append(Finding("error", "malformed_link", message, block=number))
            elif urlsplit(url).scheme.lower() == "http":
                message = (
                    f"The link {url!r} is not HTTPS; some mail clients warn readers about "
                    "plain-HTTP links."
                )
                found.append(Finding("warning", "insecure_link", message, block=number))
    errors = [f for f in found if f.level == "error"][:MAX_LINK_FINDINGS]
    return errors + [f for f in found if f.level == "warning"][:MAX_LINK_FINDINGS]
