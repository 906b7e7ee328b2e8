"""Console block-by-block editor for an issue: one form section per block."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.console import block_form
from app.console.stale_edit import STALE, save_form
from app.console.web import (
    PREFIX,
    ConsoleRoute,
    EditorDep,
    SessionDep,
    posted_form,
    redirect,
    render,
    signed_in,
)
from app.deps import ContextDep
from app.errors import DomainError, PreconditionFailed
from app.issues import service
from app.issues.markdown_format import issue_to_markdown
from app.issues.schemas import IssuePatch
from app.models import Issue
from app.rendering.blocks import BLOCK_TYPES

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/issues",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)


@router.get("/{issue_id}/blocks")
def edit_blocks(issue_id: int, request: Request, session: SessionDep, _: EditorDep) -> Response:
    """Show the block-by-block editor: one form section per block."""
    issue = service.get_issue(session, issue_id)
    sections = [block_form.to_form(b) for b in issue.blocks]
    return _blocks_page(
        request, issue, issue.subject, issue.preheader, sections, version=str(issue.version)
    )


def _blocks_page(
    request: Request,
    issue: Issue,
    subject: str,
    preheader: str,
    sections: list[block_form.BlockForm],
    *,
    version: str,
    error: str | None = None,
    status: int = 200,
    theirs: str | None = None,
) -> Response:
    return render(
        request,
        "issue_blocks.html",
        status_code=status,
        section="issues",
        issue=issue,
        subject=subject,
        preheader=preheader,
        sections=sections,
        block_types=BLOCK_TYPES,
        version=version,
        theirs=theirs,
        error=error,
    )


@router.post("/{issue_id}/blocks")
def save_blocks(
    issue_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    form: Annotated[FormData, Depends(posted_form)],
) -> Response:
    """Apply removals and the new order; add a block, or save everything."""
    issue = service.get_issue(session, issue_id)
    subject = str(form.get("subject") or "")[:300]
    preheader = str(form.get("preheader") or "")[:300]
    version = str(form.get("version") or "")[:20]
    try:
        sections = block_form.read_form(form)
    except DomainError as exc:
        return _blocks_page(
            request,
            issue,
            subject,
            preheader,
            [],
            version=version,
            error=exc.message,
            status=exc.status,
        )
    if form.get("action") == "add":
        # Adding changes nothing stored: the new, empty section is filled in first.
        sections.append(block_form.blank(str(form.get("new_type") or "")))
        return _blocks_page(request, issue, subject, preheader, sections, version=version)
    try:
        blocks = [block_form.to_block(s, n) for n, s in enumerate(sections, start=1)]
        patch = IssuePatch(subject=subject, preheader=preheader, blocks=blocks)
        save_form(session, issue_id, patch, ctx.renderer, version)
    except ValidationError as exc:
        session.rollback()
        message = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        return _blocks_page(
            request,
            issue,
            subject,
            preheader,
            sections,
            version=version,
            error=message,
            status=422,
        )
    except DomainError as exc:
        session.rollback()
        if isinstance(exc, PreconditionFailed):
            # Nothing is overwritten and nothing typed is lost: their text is shown, these
            # sections stay in the form, which now names the saved version.
            saved = service.get_issue(session, issue_id)
            return _blocks_page(
                request,
                saved,
                subject,
                preheader,
                sections,
                version=str(saved.version),
                theirs=issue_to_markdown(saved),
                error=STALE,
                status=409,
            )
        return _blocks_page(
            request,
            issue,
            subject,
            preheader,
            sections,
            version=version,
            error=exc.message,
            status=exc.status,
        )
    return redirect(f"{PREFIX}/issues/{issue_id}?done=saved")
