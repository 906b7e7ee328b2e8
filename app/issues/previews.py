"""Render an issue for people to look at: the compiled email, its masthead, the preview."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.audience.newsletters import get_newsletter, masthead
from app.models import (
    Issue,
)
from app.rendering import placeholders
from app.rendering.compile import QR_CID, CompiledEmail, Renderer
from app.rendering.masthead import Masthead
from app.tokens import TokenService


def compile_issue(renderer: Renderer, issue: Issue, head: Masthead | None = None) -> CompiledEmail:
    """Render the issue once (MJML, premailer): what every subscriber's copy is filled from."""
    return renderer.compile_issue(
        subject=issue.subject,
        preheader=issue.preheader,
        slug=issue.slug,
        blocks=issue.blocks,
        masthead=head,
    )


def issue_masthead(session: Session, renderer: Renderer, issue: Issue) -> Masthead:
    """Return the masthead of the issue's newsletter (name, sender, footer, List-Id)."""
    return masthead(get_newsletter(session, issue.newsletter_id), renderer.settings)


def preview_html(
    renderer: Renderer, tokens: TokenService, issue: Issue, head: Masthead | None = None
) -> str:
    """Return the email's HTML as a subscriber sees it (links carry a token of no one)."""
    # Merge tags show their defaults: a preview is no one reader's copy.
    html = compile_issue(renderer, issue, head).with_defaults().html
    # Subscriber id 0 never exists, so these links render and verify but change nothing.
    html = html.replace(placeholders.UNSUBSCRIBE_TOKEN, tokens.unsubscribe_token(0))
    html = html.replace(placeholders.PREFERENCES_TOKEN, tokens.preferences_token(0))
    # A browser cannot resolve cid: (the image travels inside the message); this app serves it.
    return html.replace(f"cid:{QR_CID}", "/subscribe/qr.png")
