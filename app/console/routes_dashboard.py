"""Console dashboard, live progress, an issue's results, and the read-only settings page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from app.automations import abtests
from app.console import settings_view
from app.console.queries import count_recipients, issue_recipients, issues_in
from app.console.web import PREFIX, ConsoleRoute, EditorDep, SessionDep, render, signed_in
from app.deps import ContextDep
from app.issues import service
from app.models import DeliveryStatus, IssueStatus, utcnow
from app.providers.service import last_events

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=PREFIX,
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)

IN_PROGRESS = (IssueStatus.sending, IssueStatus.paused)
FINISHED = (IssueStatus.sent, IssueStatus.cancelled)


@router.get("/")
def dashboard(request: Request, session: SessionDep, _: EditorDep) -> Response:
    """Show scheduled sends, sends in progress and the last finished ones."""
    running = [(i, service.stats(session, i.id)) for i in issues_in(session, IN_PROGRESS)]
    finished = [(i, service.stats(session, i.id)) for i in issues_in(session, FINISHED, 5)]
    return render(
        request,
        "dashboard.html",
        section="dashboard",
        scheduled=issues_in(session, (IssueStatus.scheduled,)),
        running=running,
        finished=finished,
        drafts=issues_in(session, (IssueStatus.draft,), 5),
        audience=count_recipients(session, utcnow()),
    )


@router.get("/progress.json")
def progress(
    session: SessionDep,
    _: EditorDep,
    ids: Annotated[str, Query(max_length=200, pattern=r"^[0-9,]*$")] = "",
) -> JSONResponse:
    """Return counts, rate and ETA of the given issues (the pages poll this)."""
    out: dict[str, Any] = {}
    for part in [p for p in ids.split(",") if p][:20]:
        st = service.stats(session, int(part))
        done = st["sent"] + st["failed"] + st["unknown"] + st["cancelled"]
        out[part] = {
            "status": st["status"],
            "recipients": st["recipients"],
            "done": done,
            "sent": st["sent"],
            "failed": st["failed"],
            "retry": st["retry"],
            "rate_per_second": st["rate_per_second"],
            "eta_seconds": st["eta_seconds"],
            "pause_reason": st["pause_reason"],
        }
    return JSONResponse(out)


@router.get("/issues/{issue_id}/results")
def results(
    issue_id: int,
    request: Request,
    session: SessionDep,
    _: EditorDep,
    status: Annotated[str, Query(max_length=16)] = "",
    q: Annotated[str, Query(max_length=320)] = "",
    after: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Show an issue's counts, bounces, alerts and its recipients (searchable, paged)."""
    issue = service.get_issue(session, issue_id)
    rows, next_cursor = issue_recipients(session, issue_id, status=status or None, q=q, after=after)
    return render(
        request,
        "results.html",
        section="issues",
        issue=issue,
        stats=service.stats(session, issue_id),
        variants=abtests.variants(session, issue_id),
        rows=rows,
        next_cursor=next_cursor,
        status=status,
        q=q,
        after=after,
        statuses=[s.value for s in DeliveryStatus],
        notice="The send has started." if request.query_params.get("done") == "sending" else None,
    )


@router.get("/settings")
def settings_page(request: Request, ctx: ContextDep, session: SessionDep, _: EditorDep) -> Response:
    """Show the sending identity, DNS records, provider webhooks and which defaults are in use."""
    view = settings_view.describe(ctx.settings, last_events(session))
    return render(request, "settings.html", section="settings", view=view)
