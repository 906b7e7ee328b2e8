"""Post-processing of MJML output: head additions, CSS inlining, line wrapping."""

from __future__ import annotations

import logging
import re
from html import escape

from premailer import Premailer

SOFT_LIMIT = 200  # lines are broken near here; a single attribute value may run past it
HARD_LIMIT = 998  # RFC 5322 line limit in octets

_DOCTYPE = re.compile(r"^\s*<!doctype[^>]*>\s*", re.IGNORECASE)
_HEAD = re.compile(r"<head[^>]*>", re.IGNORECASE)


def add_to_head(html: str, markup: str) -> str:
    """Insert markup right after the opening <head> tag."""
    match = _HEAD.search(html)
    if match is None:
        return html
    return html[: match.end()] + markup + html[match.end() :]


def meta_tags(pairs: list[tuple[str, str, str]]) -> str:
    """Return <meta> tags from (attribute, key, content) triples, escaped."""
    return "".join(f'<meta {a}="{escape(k)}" content="{escape(v)}">' for a, k, v in pairs)


def inline_css(html: str) -> str:
    """Inline the unmarked <style> rules into style attributes; keep ignored style tags."""
    body = _DOCTYPE.sub("", html)
    premailer = Premailer(
        base_url=None,
        disable_link_rewrites=True,  # links, cid: images and placeholders stay byte-identical
        # Style tags marked data-premailer="ignore" (media queries, dark mode, mrml's reset)
        # are kept verbatim; the one stylesheet meant for inlining is consumed.
        keep_style_tags=False,
        strip_important=False,
        remove_classes=False,  # the media queries select by class
        allow_network=False,
        allow_loading_external_files=False,
        disable_validation=True,  # keep mso-* and other non-standard properties
        cssutils_logging_level=logging.CRITICAL,
        align_floating_images=False,
    )
    # lxml drops a lower-case doctype on output; put the HTML5 one back ourselves.
    return "<!DOCTYPE html>\n" + premailer.transform(body, pretty_print=False)


def wrap_lines(html: str, limit: int = SOFT_LIMIT) -> str:
    """Break long lines by turning a space into a newline where HTML treats both alike.

    That is: in text and between attributes, never inside a quoted attribute value or
    the `<!--[if ...]>` head of a conditional comment, and never inside <pre>.
    """
    out: list[str] = []
    length = 0
    last_break = -1  # index in out of the last breakable space on the current line
    quote = ""
    in_tag = False
    locked = False  # inside a `<!...>` opener or a <pre>
    pre = False
    for i, ch in enumerate(html):
        if in_tag:
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == ">":
                in_tag = False
                locked = pre
        elif ch == "<":
            in_tag = True
            head = html[i : i + 5].lower()
            locked = head.startswith("<!")
            if head.startswith("<pre"):
                pre = True
            elif head.startswith("</pre"):
                pre = False
        if ch == "\n":
            length = 0
            last_break = -1
        else:
            length += 1
            if ch == " " and not quote and not locked and not pre:
                last_break = len(out)
        out.append(ch)
        if length > limit and last_break >= 0:
            out[last_break] = "\n"
            length = len(out) - last_break - 1
            last_break = -1
    return "".join(out)
