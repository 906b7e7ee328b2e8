"""Console page listing issues: newest first, searched, filtered by status and newsletter."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app.console.issue_notices import done_notice
from app.console.newsletter_choice import switcher
from app.console.queries import find_issues
from app.console.web import PREFIX, ConsoleRoute, EditorDep, SessionDep, render, signed_in
from app.deps import ContextDep
from app.issues.summary import issue_date_text
from app.models import IssueStatus

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/issues",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)


@router.get("")
def issue_list(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    q: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    newsletter: Annotated[str, Query(max_length=80)] = "",
) -> Response:
    """List issues newest first (of the chosen newsletter), with date and slug; search, filter."""
    menu = switcher(session, ctx.settings, request.url.path, newsletter)
    issues = find_issues(session, q=q, status=status, newsletter_id=menu.chosen_id)
    return render(
        request,
        "issues.html",
        section="issues",
        switcher=menu,
        issues=issues,
        dates={i.id: issue_date_text(i.blocks) for i in issues},
        q=q,
        status=status,
        statuses=[s.value for s in IssueStatus],
        notice=done_notice(request),
    )
