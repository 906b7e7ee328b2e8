"""Console dashboard, live progress, an issue's results, and the read-only settings page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from app.audience import newsletters
from app.automations import abtests
from app.console import settings_view
from app.console.getting_started import checklist
from app.console.live_results import (
    PER_PAGE,
    PER_PAGE_MAX,
    progress_json,
    read_results,
    snapshot,
)
from app.console.newsletter_choice import switcher
from app.console.queries import count_recipients, issues_in
from app.console.web import (
    PREFIX,
    ConsoleRoute,
    EditorDep,
    SessionDep,
    render,
    signed_in,
    templates,
)
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
def dashboard(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    newsletter: Annotated[str, Query(max_length=80)] = "",
) -> Response:
    """Show the first steps, scheduled sends, sends in progress and the last finished ones
    (of the chosen newsletter)."""
    menu = switcher(session, ctx.settings, request.url.path, newsletter)
    nid = menu.chosen_id
    running = [
        (i, service.stats(session, i.id))
        for i in issues_in(session, IN_PROGRESS, newsletter_id=nid)
    ]
    finished = [
        (i, service.stats(session, i.id))
        for i in issues_in(session, FINISHED, 5, newsletter_id=nid)
    ]
    steps = checklist(session, ctx.settings)
    return render(
        request,
        "dashboard.html",
        section="dashboard",
        switcher=menu,
        steps=steps if not all(s.done for s in steps) else [],
        steps_done=sum(s.done for s in steps),
        last=finished[0] if finished else None,
        scheduled=issues_in(session, (IssueStatus.scheduled,), newsletter_id=nid),
        running=running,
        finished=finished,
        drafts=issues_in(session, (IssueStatus.draft,), 5, newsletter_id=nid),
        audience=count_recipients(session, utcnow(), nid),
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
        out[part] = progress_json(st)
    return JSONResponse(out)


@router.get("/issues/{issue_id}/results")
def results(
    issue_id: int,
    request: Request,
    ctx: ContextDep,
    current: SessionDep,
    _: EditorDep,
    status: Annotated[str, Query(max_length=16)] = "",
    q: Annotated[str, Query(max_length=320)] = "",
    after: Annotated[str, Query(max_length=20)] = "",
    per: Annotated[int, Query(ge=1, le=PER_PAGE_MAX)] = PER_PAGE,
) -> Response:
    """Show an issue's counts, bounces, alerts and its recipients (searchable, paged, live)."""
    with snapshot(ctx.sessions, current) as session:
        issue = service.get_issue(session, issue_id)
        view = read_results(session, issue_id, status=status, q=q, after=after, per=per)
        variants = abtests.variants(session, issue_id)  # in the snapshot: it closes after
    return render(
        request,
        "results.html",
        section="issues",
        issue=issue,
        stats=view.stats,
        view=view,
        variants=variants,
        rows=view.rows,
        next_cursor=view.next_cursor,
        status=status,
        q=q,
        after=after,
        per=per,
        statuses=[s.value for s in DeliveryStatus],
        notice="The send has started." if request.query_params.get("done") == "sending" else None,
    )


@router.get("/issues/{issue_id}/results.json")
def results_live(
    issue_id: int,
    request: Request,
    ctx: ContextDep,
    current: SessionDep,
    _: EditorDep,
    status: Annotated[str, Query(max_length=16)] = "",
    q: Annotated[str, Query(max_length=320)] = "",
    after: Annotated[str, Query(max_length=20)] = "",
    per: Annotated[int, Query(ge=1, le=PER_PAGE_MAX)] = PER_PAGE,
) -> JSONResponse:
    """Return the tiles, the bar and the table of the results page from one reading."""
    with snapshot(ctx.sessions, current) as session:
        issue = service.get_issue(session, issue_id)
        view = read_results(session, issue_id, status=status, q=q, after=after, per=per)
    st = view.stats
    parts = templates.get_template("_results_live.html").module
    return JSONResponse(
        {
            "status": st.status,
            "progress": progress_json(st),
            "tiles": str(parts.tiles(view)),  # type: ignore[attr-defined]
            "rows": str(parts.rows(view.rows)),  # type: ignore[attr-defined]
            "clicks": str(parts.clicks(issue, st.clicks)),  # type: ignore[attr-defined]
        }
    )


@router.get("/settings")
def settings_page(request: Request, ctx: ContextDep, session: SessionDep, _: EditorDep) -> Response:
    """Show the sending identity, DNS records, provider webhooks and which defaults are in use."""
    view = settings_view.describe(ctx.settings, last_events(session))
    heads = [newsletters.masthead(n, ctx.settings) for n in newsletters.list_newsletters(session)]
    return render(request, "settings.html", section="settings", view=view, newsletters=heads)
