"""Console actions on an issue: test copy, schedule, send, pause, resume, cancel, delete."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.console.audience_choice import read_choice
from app.console.local_plan import local_plan
from app.console.routes_issue_page import issue_page
from app.console.web import (
    PREFIX,
    ConsoleRoute,
    EditorDep,
    SessionDep,
    redirect,
    render,
    signed_in,
)
from app.context import Context
from app.deps import ContextDep
from app.errors import DomainError, InvalidInput
from app.issues import service
from app.issues.schemas import IssuePatch, SendIn, read_send_in
from app.models import IssueStatus, utcnow

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/issues",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)


def _act(
    request: Request,
    session: Session,
    ctx: Context,
    issue_id: int,
    done: str,
    action: Callable[[], Any],
) -> Response:
    """Run one action; a refusal re-renders the issue page with the reason, nothing changed."""
    try:
        action()
    except DomainError as exc:
        session.rollback()
        return issue_page(request, session, ctx, issue_id, error=exc.message, status=exc.status)
    return redirect(f"{PREFIX}/issues/{issue_id}?done={done}")


@router.post("/{issue_id}/test")
def test_send(
    issue_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    editor: EditorDep,
    to: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    """Queue a [TEST] copy to the signed-in editor (or the address given)."""
    address = to.strip() or editor.email
    return _act(
        request,
        session,
        ctx,
        issue_id,
        "test",
        lambda: service.queue_test_send(session, issue_id, [address], ctx.renderer),
    )


def parse_send_at(value: str, now: datetime) -> SendIn:
    """Read a datetime-local value (UTC) as the API does; refuse empty or past times too."""
    if not value.strip():
        raise InvalidInput("Choose a date and time for the send (UTC).")
    data = read_send_in(send_at=value.strip())
    # The API starts a past send_at at once; the console's schedule form means "later".
    if data.send_at is None or data.send_at <= now:
        raise InvalidInput("That time has passed; choose a time in the future, or send now.")
    return data


@router.post("/{issue_id}/schedule")
def schedule(
    issue_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    send_at: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Schedule the issue at a time (UTC); a scheduled issue moves to the new time."""
    now = utcnow()

    def run() -> None:
        data = parse_send_at(send_at, now)
        issue = service.get_issue(session, issue_id)
        if issue.status == IssueStatus.scheduled:
            patch = IssuePatch(send_at=data.send_at)
            service.update_issue(session, issue_id, patch, ctx.renderer)
        else:
            service.send_issue(session, issue_id, data, now, ctx.renderer)

    return _act(request, session, ctx, issue_id, "scheduled", run)


@router.post("/{issue_id}/send-local")
def send_local(
    issue_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    local_time: Annotated[str, Form(max_length=8)] = "",
    local_date: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Send at a wall-clock time in each reader's own time zone on a day."""

    def run() -> None:
        data = _local_send(local_time, local_date)
        service.send_issue(session, issue_id, data, utcnow(), ctx.renderer)

    return _act(request, session, ctx, issue_id, "local", run)


def _local_send(local_time: str, local_date: str) -> SendIn:
    """Read the local-time form as the API reads its body (both fields are needed here)."""
    if not local_time.strip() or not local_date.strip():
        raise InvalidInput("Give a time like 06:00 and a day like 2026-12-01.")
    return read_send_in(local_time=local_time.strip(), date=local_date.strip())


@router.get("/{issue_id}/send-local")
def confirm_send_local(
    issue_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    local_time: Annotated[str, Query(max_length=8)] = "",
    local_date: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """Ask before a local-time send: how many get it now, how many later, first and last moment."""
    issue = service.get_issue(session, issue_id)
    now = utcnow()
    try:
        data = _local_send(local_time, local_date)
    except DomainError as exc:
        return issue_page(request, session, ctx, issue_id, error=exc.message, status=exc.status)
    assert data.local_time is not None and data.date is not None  # SendIn: both or neither
    findings = service.pre_send_check(ctx.renderer, issue, session)
    audience = service.planned_audience(session, issue, now, data)
    tz = ctx.settings.default_timezone
    plan = local_plan(session, data.local_time, data.date, tz, now, audience)
    return render(
        request,
        "issue_send_local.html",
        section="issues",
        issue=issue,
        plan=plan,
        now=now,
        findings=findings,
        blocked=any(f.level == "error" for f in findings) or issue.status != IssueStatus.draft,
    )


AudienceQuery = Annotated[str, Query(max_length=16)]
FilterText = Annotated[str, Query(max_length=2000)]


@router.get("/{issue_id}/send")
def confirm_send(
    issue_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    audience: AudienceQuery = "everyone",
    segment: Annotated[str, Query(max_length=12)] = "",
    filter: FilterText = "",
) -> Response:
    """Ask for confirmation, naming the audience and how many readers a send now freezes."""
    issue = service.get_issue(session, issue_id)
    try:
        chosen = read_choice(session, issue, utcnow(), audience, segment, filter)
    except DomainError as exc:
        session.rollback()
        return issue_page(request, session, ctx, issue_id, error=exc.message, status=exc.status)
    # The merge-tag check counts the readers this audience reaches, as the send will.
    chosen_filter = chosen.segment.filter if chosen.segment is not None else chosen.filter
    findings = service.pre_send_check(ctx.renderer, issue, session, chosen_filter or None)
    return render(
        request,
        "issue_send.html",
        section="issues",
        issue=issue,
        audience=chosen,
        newsletter=service.issue_masthead(session, ctx.renderer, issue),
        recipients=chosen.count,
        findings=findings,
        blocked=any(f.level == "error" for f in findings),
    )


def _send_now(session: Session, issue_id: int, ctx: Context, part: SendIn | None) -> None:
    # The editor pressed "Send now" on a scheduled issue: that replaces the schedule. (The API
    # answers a second send with 409 instead, so a repeated request never sends twice.)
    if service.get_issue(session, issue_id).status == IssueStatus.scheduled:
        service.unschedule_issue(session, issue_id)
    service.send_issue(session, issue_id, part, utcnow(), ctx.renderer)


@router.post("/{issue_id}/send")
def send_now(
    issue_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    audience: Annotated[str, Form(max_length=16)] = "everyone",
    segment: Annotated[str, Form(max_length=12)] = "",
    filter: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Start the send now to the audience confirmed: recipients are frozen, workers take over."""

    def run() -> None:
        issue = service.get_issue(session, issue_id)
        chosen = read_choice(session, issue, utcnow(), audience, segment, filter, counted=False)
        _send_now(session, issue_id, ctx, chosen.part)

    response = _act(request, session, ctx, issue_id, "sending", run)
    if response.status_code == 303:
        return redirect(f"{PREFIX}/issues/{issue_id}/results?done=sending")
    return response


@router.post("/{issue_id}/pause")
def pause(
    issue_id: int, request: Request, session: SessionDep, ctx: ContextDep, _: EditorDep
) -> Response:
    """Pause a send."""
    return _act(
        request,
        session,
        ctx,
        issue_id,
        "paused",
        lambda: service.pause_issue(session, issue_id, utcnow()),
    )


@router.post("/{issue_id}/resume")
def resume(
    issue_id: int, request: Request, session: SessionDep, ctx: ContextDep, _: EditorDep
) -> Response:
    """Resume a paused send."""
    return _act(
        request,
        session,
        ctx,
        issue_id,
        "resumed",
        lambda: service.resume_issue(session, issue_id, utcnow()),
    )


@router.get("/{issue_id}/cancel")
def confirm_cancel(issue_id: int, request: Request, session: SessionDep, _: EditorDep) -> Response:
    """Ask before cancelling: a cancelled send cannot be restarted."""
    issue = service.get_issue(session, issue_id)
    sending = issue.status in (IssueStatus.sending, IssueStatus.paused)
    return render(
        request,
        "confirm.html",
        section="issues",
        issue=issue,
        heading=f"Cancel “{issue.subject}”?",
        explanation=(
            "Copies not yet sent will not go out, and the send cannot be restarted; "
            "readers who already have it keep it."
            if sending
            else "The scheduled send is called off; the issue cannot be scheduled again."
        ),
        action=f"{PREFIX}/issues/{issue_id}/cancel",
        button="Cancel the send",
    )


@router.get("/{issue_id}/delete")
def confirm_delete(issue_id: int, request: Request, session: SessionDep, _: EditorDep) -> Response:
    """Ask before deleting a draft."""
    issue = service.get_issue(session, issue_id)
    return render(
        request,
        "confirm.html",
        section="issues",
        issue=issue,
        heading=f"Delete “{issue.subject}”?",
        explanation="The draft and its content are deleted for good.",
        action=f"{PREFIX}/issues/{issue_id}/delete",
        button="Delete draft",
    )


@router.post("/{issue_id}/cancel")
def cancel(
    issue_id: int, request: Request, session: SessionDep, ctx: ContextDep, _: EditorDep
) -> Response:
    """Cancel a scheduled, sending or paused issue."""
    return _act(
        request,
        session,
        ctx,
        issue_id,
        "cancelled",
        lambda: service.cancel_issue(session, issue_id, utcnow()),
    )


@router.post("/{issue_id}/delete")
def delete(
    issue_id: int, request: Request, session: SessionDep, ctx: ContextDep, _: EditorDep
) -> Response:
    """Delete a draft."""
    response = _act(
        request,
        session,
        ctx,
        issue_id,
        "deleted",
        lambda: service.delete_issue(session, issue_id),
    )
    if response.status_code == 303:
        return redirect(f"{PREFIX}/issues?done=deleted")
    return response
