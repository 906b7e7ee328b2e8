"""Compile an issue once: blocks → MJML (Jinja) → HTML → inlined CSS, plus the text part."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from email.utils import parseaddr
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markdown_it import MarkdownIt
from mjml import mjml2html

from app import paths
from app.config import Settings
from app.errors import TemplateError
from app.rendering import html as htmlpost
from app.rendering import merge_tags, placeholders
from app.rendering.links import rewrite_links
from app.rendering.markdown import markdown_parser, to_html, wrap
from app.rendering.masthead import Masthead, from_settings
from app.rendering.qr import qr_png
from app.rendering.text import heading, issue_text

QR_CID = "subscribe-qr@morningpost"
QR_FILENAME = "subscribe-qr.png"

# Which fields of which block types are Markdown; each gets a sanitised `<field>_html` twin.
_MARKDOWN_FIELDS = {"lead", "article", "subscribe", "markdown"}

# Marks the mj-style whose rules premailer should inline; every other <style> is left alone.
_STYLE_TAG = re.compile(r"<style([^>]*)>(\s*)(/\* inline \*/)?", re.IGNORECASE)
# mj-preview hard-codes pure white for the hidden preheader; a soft colour is just as hidden.
_PREVIEW_WHITE = "color:#ffffff;line-height:1px"
_PREVIEW_DIV = re.compile(
    r'(<div style="display:none;font-size:1px;color:#eeeae2;line-height:1px;[^"]*">)(.*?)(</div>)',
    re.S,
)
# Inbox previews show the preheader and then whatever text follows (the masthead); invisible
# joiners with spaces fill the rest of the preview line instead.
PREHEADER_SPACER = "&#847;&zwnj;&nbsp;" * 90
QR_KEPT = 64  # sign-up QR codes and welcome emails kept per process: one per newsletter


@dataclass(frozen=True)
class InlineImage:
    """An image sent inside the message, referenced from the HTML as cid:<cid>."""

    cid: str
    filename: str
    content: bytes  # image/png


@dataclass(frozen=True)
class CompiledEmail:
    """One message rendered for every recipient, with per-subscriber placeholders."""

    subject: str
    preheader: str
    html: str
    text: str
    images: tuple[InlineImage, ...]
    # The merge tags whose stand-ins (merge_tags.placeholder) html and text carry, in order.
    tags: tuple[merge_tags.MergeTag, ...] = ()

    def with_defaults(self) -> CompiledEmail:
        """Return the email as a reader with no name and no attributes sees it."""
        if not self.tags:
            return self
        return replace(
            self,
            html=merge_tags.fill_defaults(self.html, self.tags, html=True),
            text=merge_tags.fill_defaults(self.text, self.tags, html=False),
            tags=(),
        )


def newsletter_name(rendered: str, name: str) -> str:
    """Fill `{{ newsletter }}` in rendered HTML or text (name already escaped for HTML)."""
    return rendered.replace(merge_tags.NEWSLETTER_STAND_IN, name)


class Renderer:
    """Render issues and the confirmation email; build one per process, reuse freely."""

    def __init__(self, settings: Settings, templates_dir: Path | None = None) -> None:
        self.settings = settings
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir or paths.email_templates_dir()),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self.md: MarkdownIt = markdown_parser()
        base = settings.base_url
        self.subscribe_url = f"{base}/subscribe"
        self._qr: dict[str, bytes] = {self.subscribe_url: qr_png(self.subscribe_url)}
        # Per masthead: an editor's change of a newsletter's name makes a new key.
        self._welcome: dict[tuple[Masthead, tuple[str, ...]], CompiledEmail] = {}

    # Public API ------------------------------------------------------------------------

    def qr_png(self, url: str | None = None) -> bytes:
        """Return the PNG QR code of a sign-up page (the default newsletter's when None)."""
        url = url or self.subscribe_url
        if url not in self._qr:
            if len(self._qr) > QR_KEPT:  # one per newsletter; a bound all the same
                self._qr.clear()
            self._qr[url] = qr_png(url)
        return self._qr[url]

    def default_masthead(self) -> Masthead:
        """Return the masthead of the settings alone (no newsletter row at hand)."""
        return from_settings(self.settings)

    def compile_issue(
        self,
        *,
        subject: str,
        preheader: str,
        slug: str,
        blocks: list[dict[str, Any]],
        masthead: Masthead | None = None,
    ) -> CompiledEmail:
        """Render an issue for email, with unsubscribe/preferences placeholders in its URLs.

        With a masthead, the email carries that newsletter's name, tagline and postal address,
        and its unsubscribe link leaves that newsletter only.
        """
        base = self.settings.base_url
        head = masthead or self.default_masthead()
        subject = merge_tags.fill_newsletter(subject, head.name)
        preheader = merge_tags.fill_newsletter(preheader, head.name)
        merge = merge_tags.Substitution()
        ctx = self._context(subject, preheader, slug, merge.blocks(blocks), head, web=False)
        leave = masthead.unsubscribe_query if masthead is not None else ""
        ctx.update(
            unsubscribe_url=f"{base}/unsubscribe/{placeholders.UNSUBSCRIBE_TOKEN}{leave}",
            preferences_url=f"{base}/preferences/{placeholders.PREFERENCES_TOKEN}",
            qr_src=f"cid:{QR_CID}",
        )
        html = self._html("issue.mjml", ctx)
        html = rewrite_links(html, self.settings, slug)  # click counts (app.rendering.links)
        text = merge_tags.as_text_part(issue_text(ctx["blocks"], ctx))
        qr = self.qr_png(ctx["subscribe_url"])
        image = InlineImage(cid=QR_CID, filename=QR_FILENAME, content=qr)
        uses_qr = f"cid:{QR_CID}" in html
        # {{ newsletter }}: the newsletter's name, known now (a reader's own values are slots).
        name = ctx["name"]
        return CompiledEmail(
            subject,
            preheader,
            newsletter_name(html, escape(name)),
            newsletter_name(text, name),
            (image,) if uses_qr else (),
            tuple(merge.tags),
        )

    def web_version(
        self,
        *,
        subject: str,
        preheader: str,
        slug: str,
        blocks: list[dict[str, Any]],
        masthead: Masthead | None = None,
    ) -> str:
        """Render the archive page of an issue: no tokens, a subscribe link instead.

        Merge tags show their defaults (what a reader without a name or attributes gets):
        the page is everyone's, so it never carries one reader's values.
        """
        head = masthead or self.default_masthead()
        subject = merge_tags.fill_newsletter(subject, head.name)
        preheader = merge_tags.fill_newsletter(preheader, head.name)
        merge = merge_tags.Substitution()
        ctx = self._context(subject, preheader, slug, merge.blocks(blocks), head, web=True)
        # Same origin: right whatever BASE_URL says.
        ctx["qr_src"] = f"{head.subscribe_path}/qr.png"
        og = [
            ("property", "og:type", "article"),
            ("property", "og:site_name", head.name),
            ("property", "og:title", subject),
            ("property", "og:description", preheader),
            ("property", "og:url", ctx["web_url"]),
            ("name", "description", preheader),
        ]
        extra = htmlpost.meta_tags(og) + f'<link rel="canonical" href="{escape(ctx["web_url"])}">'
        page = self._html("issue.mjml", ctx, head=extra)
        page = merge_tags.fill_defaults(page, merge.tags, html=True)
        return newsletter_name(page, escape(ctx["name"]))

    def confirmation_email(
        self,
        *,
        confirm_url: str,
        reader_name: str = "",
        masthead: Masthead | None = None,
        names: list[str] | None = None,
    ) -> CompiledEmail:
        """Render the double opt-in email with one button to confirm_url (greeting by name).

        The masthead (the first newsletter asked for) gives the footer; `names` lists every
        newsletter the one click confirms.
        """
        head = masthead or self.default_masthead()
        name = _joined(names or [head.name])
        # One line, no control characters: the name is the reader's own typing.
        reader = " ".join(reader_name.split())[:100]
        subject = f"Confirm your subscription to {name}"
        preheader = f"One click and {name} arrives every morning."
        ctx = {
            "subject": subject,
            "preheader": preheader,
            "name": name,
            "tagline": head.tagline,
            "confirm_url": confirm_url,
            "postal_address": head.postal_address,
            "reader_name": reader,
        }
        html = self._html("confirm.mjml", ctx)
        text = "\n\n".join(
            [
                heading(subject, "="),
                f"Hello {reader}," if reader else "Hello,",
                wrap(
                    f"Someone, hopefully you, asked to receive {name} at this address. "
                    "Please confirm your subscription by opening this link:"
                ),
                confirm_url,
                wrap(
                    "If you did not ask for this, ignore this email: you will not be "
                    "subscribed and will hear nothing more from us."
                ),
                f"-- \n{name}",
                *([wrap(head.postal_address)] if head.postal_address else []),
            ]
        )
        return CompiledEmail(subject, preheader, html, text + "\n", ())

    def welcome_email(
        self, masthead: Masthead | None = None, names: list[str] | None = None
    ) -> CompiledEmail:
        """Render a welcome email, once per masthead and names; list links are placeholders.

        The masthead (the reader's first newsletter) gives the sender and footer; `names`
        lists every newsletter they now take.
        """
        head = masthead or self.default_masthead()
        key = (head, tuple(names or [head.name]))
        if key not in self._welcome:
            if len(self._welcome) > QR_KEPT:
                self._welcome.clear()
            self._welcome[key] = self._render_welcome(head, _joined(list(key[1])))
        return self._welcome[key]

    # Steps -----------------------------------------------------------------------------

    def _render_welcome(self, head: Masthead, name: str) -> CompiledEmail:
        settings = self.settings
        base = settings.base_url
        sender = _address_of(head.from_address) or settings.sender.addr_spec
        subject = f"Welcome to {name}"
        preheader = f"You're subscribed. {name} arrives every morning from tomorrow."
        ctx = {
            "subject": subject,
            "preheader": preheader,
            "name": name,
            "tagline": head.tagline,
            "sender": sender,
            "archive_url": f"{base}{head.archive_path}",
            "unsubscribe_url": f"{base}/unsubscribe/{placeholders.UNSUBSCRIBE_TOKEN}",
            "preferences_url": f"{base}/preferences/{placeholders.PREFERENCES_TOKEN}",
            "postal_address": head.postal_address,
        }
        html = self._html("welcome.mjml", ctx)
        lines = [
            heading(subject, "="),
            wrap(
                f"Thank you for confirming. From tomorrow, {name} arrives in this inbox each "
                "morning: the stories worth your coffee, in a few minutes of reading."
            ),
            wrap(
                f"Add {sender} to your contacts so the next issue lands in your "
                "inbox. Going away? You can pause for a few weeks instead of leaving."
            ),
            f"Past issues: {ctx['archive_url']}",
            "-- ",
            wrap(f"You are receiving this because you confirmed your subscription to {name}."),
            f"Manage preferences: {ctx['preferences_url']}",
            f"Unsubscribe: {ctx['unsubscribe_url']}",
            *([wrap(head.postal_address)] if head.postal_address else []),
        ]
        return CompiledEmail(
            subject,
            preheader,
            html,
            "\n\n".join(lines[:5]) + "\n" + "\n".join(lines[5:]) + "\n",
            (),
        )

    def _context(
        self,
        subject: str,
        preheader: str,
        slug: str,
        blocks: list[dict[str, Any]],
        head: Masthead,
        *,
        web: bool,
    ) -> dict[str, Any]:
        base = self.settings.base_url
        return {
            "subject": subject,
            "preheader": preheader,
            "name": head.name,
            "tagline": head.tagline,
            "blocks": [self._prepare(b) for b in blocks],
            "web": web,
            "web_url": f"{base}{head.issue_path(slug)}",
            "subscribe_url": f"{base}{head.subscribe_path}",
            "subscribe_host": urlsplit(base).netloc,
            "postal_address": head.postal_address,
        }

    def _prepare(self, block: dict[str, Any]) -> dict[str, Any]:
        """Add sanitised HTML twins of the Markdown fields (the block itself is not changed)."""
        out = dict(block)
        if out.get("type") in _MARKDOWN_FIELDS and isinstance(out.get("body"), str):
            out["body_html"] = to_html(self.md, out["body"])
        if out.get("type") == "opinion":
            out["items"] = [{**i, "body_html": to_html(self.md, i["body"])} for i in out["items"]]
        return out

    def _html(self, template: str, ctx: dict[str, Any], head: str = "") -> str:
        try:
            source = self.env.get_template(template).render(ctx)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"email template not found: {exc.name}") from None
        except jinja2.TemplateSyntaxError as exc:
            where = f"{exc.name or template}, line {exc.lineno}"
            raise TemplateError(f"email template error in {where}: {exc.message}") from None
        except (jinja2.UndefinedError, jinja2.TemplateError, TypeError, KeyError) as exc:
            raise TemplateError(f"email template {template} failed: {exc}") from None
        try:
            html = mjml2html(source, disable_comments=True)
        except Exception as exc:  # mrml raises ValueError, but any failure is the template's
            raise TemplateError(f"MJML error in {template}: {exc}") from None
        html = html.replace(_PREVIEW_WHITE, "color:#eeeae2;line-height:1px")
        html = _PREVIEW_DIV.sub(lambda m: m[1] + m[2] + PREHEADER_SPACER + m[3], html, count=1)
        if head:
            html = htmlpost.add_to_head(html, head)
        html = _STYLE_TAG.sub(_mark_style, html)
        return htmlpost.wrap_lines(htmlpost.inline_css(html))


def _joined(names: list[str]) -> str:
    """Return names as a sentence says them: "A", "A and B", "A, B and C"."""
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _address_of(value: str) -> str:
    """Return the bare address of `Name <address>` (or of a bare address)."""
    return parseaddr(value)[1]


def _mark_style(match: re.Match[str]) -> str:
    # Premailer inlines only the marked stylesheet; mrml's reset and our media queries
    # would otherwise be copied onto every table cell and bloat the message.
    attrs, space, mark = match.groups()
    if mark:
        return f"<style{attrs}>{space}"
    return f'<style{attrs} data-premailer="ignore">{space}'
