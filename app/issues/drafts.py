"""Write issues: create, list, edit (with ETags), delete; slugs that stay unique."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audience.newsletters import by_slug, get_newsletter
from app.errors import Conflict, DomainError, InvalidInput, NotFound, PreconditionFailed
from app.issues.duplicate import copy_subject, next_edition_blocks
from app.issues.previews import compile_issue
from app.issues.schemas import IssueIn, IssuePatch
from app.models import (
    Issue,
    IssueStatus,
    utcnow,
)
from app.rendering.blocks import parse_blocks
from app.rendering.compile import Renderer

EDITABLE = (IssueStatus.draft, IssueStatus.scheduled)


def slugify(text: str) -> str:
    """Return a URL slug made from `text`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:80].rstrip("-") or "issue"


def _free_slug(session: Session, wanted: str, explicit: bool, issue_id: int | None = None) -> str:
    query = select(Issue.id).where(Issue.slug == wanted)
    if issue_id is not None:
        query = query.where(Issue.id != issue_id)
    if session.scalar(query) is None:
        return wanted
    if explicit:
        raise Conflict(f"The slug {wanted!r} is taken by another issue.")
    # A generated slug gets the first free numeric suffix, as Ghost does.
    taken = set(session.scalars(select(Issue.slug).where(Issue.slug.like(f"{wanted}-%"))).all())
    n = 2
    while f"{wanted}-{n}" in taken:
        n += 1
    return f"{wanted}-{n}"


def get_issue(session: Session, issue_id: int) -> Issue:
    """Return the issue or raise NotFound."""
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise NotFound(f"No issue {issue_id}.")
    return issue


def list_issues(session: Session, status: str | None = None) -> list[Issue]:
    """Return issues, newest first, optionally of one status."""
    # An automation's carriers (a sequence step, an A/B variant) are not editors' issues.
    query = select(Issue).where(Issue.automation.is_(None)).order_by(Issue.id.desc())
    if status:
        if status not in IssueStatus.__members__:
            raise InvalidInput(f"Unknown status {status!r}.")
        query = query.where(Issue.status == status)
    return list(session.scalars(query).all())


def create_issue(session: Session, data: IssueIn, renderer: Renderer) -> Issue:
    """Validate the blocks, make sure the issue renders, and store it as a draft."""
    blocks = parse_blocks(data.blocks)
    newsletter = by_slug(session, data.newsletter)
    slug = _free_slug(session, data.slug or slugify(data.subject), explicit=data.slug is not None)
    issue = Issue(
        slug=slug,
        subject=data.subject,
        preheader=data.preheader,
        blocks=blocks,
        newsletter_id=newsletter.id,
    )
    compile_issue(renderer, issue)  # a block that cannot render is refused now, not at send time
    session.add(issue)
    session.flush()
    return issue


def duplicate_issue(session: Session, issue_id: int, renderer: Renderer) -> Issue:
    """Start a new draft from an issue (tomorrow's edition) in the same newsletter."""
    source = get_issue(session, issue_id)
    data = IssueIn(
        subject=copy_subject(source.subject),
        preheader=source.preheader,
        blocks=next_edition_blocks(source.blocks),
        newsletter=get_newsletter(session, source.newsletter_id).slug,
    )
    return create_issue(session, data, renderer)


def issue_etag(issue: Issue) -> str:
    """Return the ETag of an issue: its id and the version of its content and schedule."""
    return f'"{issue.id}-{issue.version}"'


def etag_version(issue_id: int, if_match: str | None) -> int | None:
    """Return the version an If-Match header names for this issue (None: no condition).

    `*` or no header means no condition (old scripts keep working); a tag that names no
    version of this issue is version 0, which never matches, so the save is refused (412).
    """
    if if_match is None or if_match.strip() == "*":
        return None
    for tag in if_match.split(","):
        tag = tag.strip().removeprefix("W/").strip('"')
        prefix, _, number = tag.partition("-")
        if prefix == str(issue_id) and number.isdigit() and len(number) < 10:
            return int(number)
    return 0


def update_issue(
    session: Session,
    issue_id: int,
    patch: IssuePatch,
    renderer: Renderer,
    *,
    if_version: int | None = None,
    repeat_is_saved: bool = False,
) -> Issue:
    """Change a draft or scheduled issue, at `if_version` when given (else PreconditionFailed).

    The save is a compare-and-set on the status (and the version): an edit never lands on a
    send that started after it read the issue (Conflict), nor over another editor's save
    made after the version it was given (PreconditionFailed). With `repeat_is_saved`, a
    stale save whose every field already holds what it asks for is that same save arriving
    again (a re-sent form, a double click): it returns the issue instead of a conflict.
    """
    issue = get_issue(session, issue_id)
    if if_version is not None and issue.version != if_version:
        if repeat_is_saved and _repeats(issue, patch):
            return issue
        raise _stale(issue)
    if issue.status not in EDITABLE:
        raise _not_editable(issue)
    fields = patch.model_fields_set
    refusal = _frozen_refusal(issue, moves="send_at" in fields)
    if refusal is not None:
        raise refusal
    values: dict[str, Any] = {}
    if "subject" in fields and patch.subject is not None:
        values["subject"] = patch.subject
    if "preheader" in fields and patch.preheader is not None:
        values["preheader"] = patch.preheader
    if "slug" in fields and patch.slug is not None:
        values["slug"] = _free_slug(session, patch.slug, explicit=True, issue_id=issue.id)
    if "blocks" in fields and patch.blocks is not None:
        values["blocks"] = parse_blocks(patch.blocks)
    if "send_at" in fields:
        if issue.status == IssueStatus.scheduled and patch.send_at is None:
            raise InvalidInput("A scheduled issue needs a send_at; cancel it to stop the send.")
        values["send_at"] = patch.send_at
    if "newsletter" in fields:
        # As on create: a slug, or null for the default newsletter; unknown: InvalidInput.
        target = by_slug(session, patch.newsletter)
        if target.id != issue.newsletter_id:
            if issue.status != IssueStatus.draft:
                # A scheduled send was checked (segment, readers) against its newsletter.
                raise Conflict(
                    f"Issue {issue.id} is {issue.status}; only a draft moves to another "
                    "newsletter (cancel the schedule first)."
                )
            values["newsletter_id"] = target.id
    # A text that cannot render is refused now, before anything is written.
    compile_issue(renderer, _draft_of(issue, values))
    if not values:
        return issue
    saved = session.execute(
        update(Issue)
        .where(
            Issue.id == issue_id,
            # A move to another newsletter lands on a draft only (never on a started send).
            Issue.status.in_(EDITABLE)
            if "newsletter_id" not in values
            else Issue.status == IssueStatus.draft,
            # Without If-Match an old script's save still wins over a newer one, as before;
            # it still never lands on a send that has started.
            *([Issue.version == issue.version] if if_version is not None else []),
            # Nor on a send whose text or moments were frozen after it read the issue.
            Issue.held_open.is_(False),
            *([Issue.local_time.is_(None)] if "send_at" in values else []),
        )
        .values(**values, version=Issue.version + 1, updated_at=utcnow())
        .returning(Issue.id)
        .execution_options(synchronize_session=False)
    ).first()
    # Read the row as it is now (a lost compare-and-set: why; a won one: what it became).
    now_issue = session.scalars(
        select(Issue).where(Issue.id == issue_id).execution_options(populate_existing=True)
    ).one_or_none()
    if now_issue is None:
        raise NotFound(f"No issue {issue_id}.")
    if saved is None:
        if now_issue.status not in EDITABLE:
            raise _not_editable(now_issue)
        raise _frozen_refusal(now_issue, moves="send_at" in values) or _stale(now_issue)
    return now_issue


def _frozen_refusal(issue: Issue, *, moves: bool) -> Conflict | None:
    """Say why a scheduled send takes no such edit: its text, or its readers' moments, are frozen.

    An A/B test froze its text when it was set up (its sample goes out from that copy); a
    local-time send froze each reader's moment, which a new send_at would not move.
    """
    if issue.held_open:
        return Conflict(
            f"Issue {issue.id} is an A/B test whose text was frozen when it was set up; "
            "cancel it to change the text."
        )
    if moves and issue.local_time is not None:
        return Conflict(
            f"Issue {issue.id} goes out at each reader's local time ({issue.local_time}); "
            "its moments do not move: cancel it instead."
        )
    return None


def _repeats(issue: Issue, patch: IssuePatch) -> bool:
    """Whether the issue already holds every field the patch sets (its text fields only).

    Any difference, or a field beyond the text (a schedule, a newsletter), is someone
    else's edit or a real change: theirs stands and the save is stale.
    """
    fields = patch.model_fields_set
    if not fields or not fields <= {"subject", "preheader", "slug", "blocks"}:
        return False
    try:
        blocks = parse_blocks(patch.blocks) if patch.blocks is not None else None
    except DomainError:
        return False  # a text that cannot be saved is not the one that was
    wanted = {"subject": patch.subject, "preheader": patch.preheader, "slug": patch.slug}
    return all(
        getattr(issue, key) == value
        for key, value in (*wanted.items(), ("blocks", blocks))
        if key in fields and value is not None
    )


def _draft_of(issue: Issue, values: dict[str, Any]) -> Issue:
    """Return an unsaved copy of the issue with `values` applied (to render before saving)."""
    fields = ("subject", "preheader", "slug", "blocks")
    return Issue(**{f: values.get(f, getattr(issue, f)) for f in fields})


def _stale(issue: Issue) -> PreconditionFailed:
    return PreconditionFailed(
        f"Issue {issue.id} was changed by someone else since you read it (it is at version "
        f"{issue.version} now); read it again, merge, and save.",
        issue_etag(issue),
    )


def _not_editable(issue: Issue) -> Conflict:
    return Conflict(
        f"Issue {issue.id} is {issue.status}; only drafts and scheduled issues change "
        "(a send that has started keeps the version it started with)."
    )


def delete_issue(session: Session, issue_id: int) -> None:
    """Delete a draft."""
    issue = get_issue(session, issue_id)
    if issue.status != IssueStatus.draft:
        raise Conflict(f"Issue {issue_id} is {issue.status}; only drafts can be deleted.")
    session.delete(issue)
    session.flush()
