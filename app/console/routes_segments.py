"""Console pages for segments: the builder with its live count and sample, the saved list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from app.audience import newsletters, segments
from app.audience.filter_parse import FilterError
from app.config import Settings
from app.console.newsletter_choice import switcher
from app.console.web import PREFIX, ConsoleRoute, EditorDep, SessionDep, redirect, render, signed_in
from app.deps import ContextDep
from app.errors import DomainError, InvalidInput
from app.models import utcnow

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/segments",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)

FILTER_MAX = 2000  # as the API's /segments/preview
Slug = Annotated[str, Query(max_length=80)]


def _page(
    request: Request,
    session: Session,
    settings: Settings,
    chosen_slug: str,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    menu = switcher(session, settings, f"{PREFIX}/segments", chosen_slug)
    now = utcnow()
    rows = [
        s
        for s in segments.list_segments(session)
        if menu.chosen is None or s.newsletter_id in (None, menu.chosen.id)
    ]
    counted = [(s, segments.count_matching(session, segments.segment_clause(s, now))) for s in rows]
    default_slug = menu.chosen.slug if menu.chosen else menu.options[0].slug
    return render(
        request,
        "segments.html",
        status_code=status,
        section="segments",
        switcher=menu,
        segments=counted,
        form=form or {"name": "", "filter": "", "newsletter": default_slug},
        error=error,
        notice="The segment is saved." if request.query_params.get("done") == "saved" else None,
    )


@router.get("")
def segment_list(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    newsletter: Slug = "",
) -> Response:
    """List the saved segments with their counts now, and the builder."""
    return _page(request, session, ctx.settings, newsletter)


@router.get("/preview.json")
def preview(
    session: SessionDep,
    _: EditorDep,
    filter: Annotated[str, Query(max_length=FILTER_MAX)] = "",
    newsletter: Slug = "",
) -> JSONResponse:
    """Count who a filter reaches now and list the first ten, as GET /segments/preview does.

    A filter that does not read answers 200 with the error and its position: the builder
    shows it while the editor types, it is not a failed request.
    """
    try:
        newsletter_id = newsletters.by_slug(session, newsletter).id if newsletter else None
        where = segments.audience_clause(filter, utcnow(), newsletter_id)
        body = {
            "count": segments.count_matching(session, where),
            "sample": segments.sample_matching(session, where),
        }
    except FilterError as exc:
        body = {"error": exc.message, "position": exc.position + 1}
    except InvalidInput as exc:
        body = {"error": exc.message}
    return JSONResponse(body)


@router.post("")
def segment_create(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    filter: Annotated[str, Form(max_length=FILTER_MAX)] = "",
    newsletter: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    """Save a segment of a newsletter (or of every reader); its filter must read."""
    try:
        newsletter_id = newsletters.by_slug(session, newsletter).id if newsletter else None
        segments.create_segment(session, name, filter, utcnow(), newsletter_id)
    except DomainError as exc:
        session.rollback()
        form = {"name": name, "filter": filter, "newsletter": newsletter}
        return _page(
            request,
            session,
            ctx.settings,
            newsletter,
            form=form,
            error=exc.message,
            status=exc.status,
        )
    return redirect(f"{PREFIX}/segments?done=saved")


@router.post("/{segment_id}/delete")
def segment_delete(segment_id: int, session: SessionDep, _: EditorDep) -> Response:
    """Delete a saved segment (sends already frozen keep their readers)."""
    session.delete(segments.get_segment(session, segment_id))
    return redirect(f"{PREFIX}/segments")
