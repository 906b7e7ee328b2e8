"""Console page of one issue: its status, what can be done now, the pre-send check."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.console.audience_choice import segments_for
from app.console.issue_notices import done_notice
from app.console.web import PREFIX, ConsoleRoute, EditorDep, SessionDep, render, signed_in
from app.context import Context
from app.deps import ContextDep
from app.issues import service
from app.models import IssueStatus, utcnow

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/issues",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)


def issue_page(
    request: Request,
    session: Session,
    ctx: Context,
    issue_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """Render an issue's page: status, actions, the pre-send check."""
    issue = service.get_issue(session, issue_id)
    findings = service.pre_send_check(ctx.renderer, issue, session)
    stats = service.stats(session, issue_id) if issue.status != IssueStatus.draft else None
    sendable = issue.status in (IssueStatus.draft, IssueStatus.scheduled)
    return render(
        request,
        "issue.html",
        status_code=status,
        section="issues",
        issue=issue,
        findings=findings,
        blocked=any(f.level == "error" for f in findings),
        stats=stats,
        notice=done_notice(request),
        error=error,
        now=utcnow(),
        one_day=timedelta(days=1),
        segments=segments_for(session, issue) if sendable else [],
        newsletter_of_issue=service.issue_masthead(session, ctx.renderer, issue).name,
    )


@router.get("/{issue_id}")
def show_issue(
    issue_id: int, request: Request, session: SessionDep, ctx: ContextDep, _: EditorDep
) -> Response:
    """Show one issue with what can be done with it now."""
    return issue_page(request, session, ctx, issue_id)
