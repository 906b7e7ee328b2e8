"""Queries behind the public archive: issues whose send has started, newest first."""

from __future__ import annotations

import json
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import Issue, IssueStatus
from app.rendering.compile import Renderer
from app.rendering.masthead import Masthead

# An issue is public once its send starts: the email links to its web version, and a reader
# who gets it early in a long send must not find a 404 there.
PUBLISHED = (IssueStatus.sending, IssueStatus.paused, IssueStatus.sent)
ARCHIVE_LIMIT = 200


def published_issues(
    session: Session, newsletter_id: int, limit: int = ARCHIVE_LIMIT
) -> list[Issue]:
    """Return one newsletter's published issues, newest first."""
    stmt = (
        select(Issue)
        # An automation's carrier keeps its web version (by its slug) but is no edition.
        .where(
            Issue.newsletter_id == newsletter_id,
            Issue.status.in_(PUBLISHED),
            Issue.automation.is_(None),
        )
        .order_by(Issue.started_at.desc(), Issue.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def published_issue(session: Session, slug: str) -> Issue:
    """Return the published issue with this slug or raise NotFound."""
    issue = session.scalars(
        select(Issue).where(Issue.slug == slug, Issue.status.in_(PUBLISHED))
    ).first()
    if issue is None:
        raise NotFound("There is no published issue at this address.")
    return issue


def web_version(renderer: Renderer, issue: Issue, masthead: Masthead | None = None) -> str:
    """Return the web version of an issue, rendered once per content, not once per reader."""
    # Every email links here, so the morning's readers arrive together: premailer must not
    # run per request. The masthead is part of the key: a renamed newsletter renders anew.
    return _web_version(
        renderer, issue.subject, issue.preheader, issue.slug, json.dumps(issue.blocks), masthead
    )


@lru_cache(maxsize=32)
def _web_version(
    renderer: Renderer,
    subject: str,
    preheader: str,
    slug: str,
    blocks: str,
    masthead: Masthead | None,
) -> str:
    return renderer.web_version(
        subject=subject,
        preheader=preheader,
        slug=slug,
        blocks=json.loads(blocks),
        masthead=masthead,
    )
