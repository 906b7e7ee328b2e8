"""Editors' issue API: thin handlers over app.issues.service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response
from fastapi.responses import HTMLResponse

from app.deps import ContextDep, IdPath, SessionDep, require_editor
from app.issues import service
from app.issues.schemas import IssueIn, IssueOut, IssuePatch, SendIn, SendOut, TestSendIn
from app.models import utcnow

# Every route here is for editors: the check runs before any body is read.
router = APIRouter(prefix="/issues", tags=["issues"], dependencies=[Depends(require_editor)])


@router.post("", status_code=201, response_model=IssueOut)
def create_issue(data: IssueIn, session: SessionDep, ctx: ContextDep) -> Any:
    """Create a draft issue."""
    return service.create_issue(session, data, ctx.renderer)


@router.get("", response_model=list[IssueOut])
def list_issues(session: SessionDep, status: str | None = None) -> Any:
    """List issues, newest first."""
    return service.list_issues(session, status)


@router.get("/{issue_id}", response_model=IssueOut)
def get_issue(issue_id: IdPath, session: SessionDep) -> Any:
    """Return one issue."""
    return service.get_issue(session, issue_id)


@router.patch("/{issue_id}", response_model=IssueOut)
def update_issue(issue_id: IdPath, patch: IssuePatch, session: SessionDep, ctx: ContextDep) -> Any:
    """Change a draft or scheduled issue."""
    return service.update_issue(session, issue_id, patch, ctx.renderer)


@router.delete("/{issue_id}", status_code=204)
def delete_issue(issue_id: IdPath, session: SessionDep) -> Response:
    """Delete a draft."""
    service.delete_issue(session, issue_id)
    return Response(status_code=204)


@router.get("/{issue_id}/preview", response_class=HTMLResponse)
def preview(issue_id: IdPath, session: SessionDep, ctx: ContextDep) -> HTMLResponse:
    """Return the email exactly as a subscriber will see it."""
    issue = service.get_issue(session, issue_id)
    return HTMLResponse(service.preview_html(ctx.renderer, ctx.tokens, issue))


@router.get("/{issue_id}/check")
def check(issue_id: IdPath, session: SessionDep, ctx: ContextDep) -> dict[str, Any]:
    """List what would block or hurt this issue's send (also run before every send)."""
    findings = service.pre_send_check(ctx.renderer, service.get_issue(session, issue_id))
    return {
        "ok": not any(f.level == "error" for f in findings),
        "findings": [f.as_dict() for f in findings],
    }


@router.post("/{issue_id}/test", status_code=202)
def test_send(
    issue_id: IdPath, data: TestSendIn, session: SessionDep, ctx: ContextDep
) -> dict[str, Any]:
    """Queue [TEST] copies to the given addresses."""
    queued = service.queue_test_send(session, issue_id, data.to, ctx.renderer)
    return {"id": issue_id, "queued": queued}


@router.post("/{issue_id}/send", status_code=202, response_model=SendOut)
def send(
    issue_id: IdPath,
    session: SessionDep,
    ctx: ContextDep,
    data: SendIn | None = Body(default=None),
) -> Any:
    """Send now, or schedule when send_at is in the future."""
    send_at = data.send_at if data else None
    return service.send_issue(session, issue_id, send_at, utcnow(), ctx.renderer)


@router.post("/{issue_id}/cancel", status_code=200)
def cancel(issue_id: IdPath, session: SessionDep) -> dict[str, Any]:
    """Stop a scheduled or sending issue."""
    return service.cancel_issue(session, issue_id, utcnow())


@router.post("/{issue_id}/pause", status_code=200)
def pause(issue_id: IdPath, session: SessionDep) -> dict[str, Any]:
    """Pause a sending issue; resume continues where it stopped."""
    return service.pause_issue(session, issue_id, utcnow())


@router.post("/{issue_id}/resume", status_code=200)
def resume(issue_id: IdPath, session: SessionDep) -> dict[str, Any]:
    """Resume a paused issue."""
    return service.resume_issue(session, issue_id, utcnow())


@router.get("/{issue_id}/stats")
def stats(issue_id: IdPath, session: SessionDep) -> dict[str, Any]:
    """Return delivery counts, status, rate (msgs/s over the last minute) and ETA."""
    return service.stats(session, issue_id)
