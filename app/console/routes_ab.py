"""Console actions of a subject A/B test: start one from the send page, decide it now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from app.automations import abtests
from app.console.routes_issue_page import issue_page
from app.console.web import (
    PREFIX,
    ConsoleRoute,
    EditorDep,
    SessionDep,
    posted_form,
    redirect,
    signed_in,
)
from app.deps import ContextDep
from app.errors import DomainError
from app.issues import service
from app.issues.schemas import SendIn
from app.models import utcnow

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/issues",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)


@router.post("/{issue_id}/send-ab")
def send_ab(
    issue_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    form: Annotated[FormData, Depends(posted_form)],
    sample_percent: Annotated[int, Form(ge=1, le=100)] = 20,
    decide_after: Annotated[str, Form(max_length=40)] = "PT2H",
) -> Response:
    """Send a sample under each subject now; the rest get the winner when it is decided."""
    # Sync, so its database work runs on a thread inside the admission gate, not on the loop.
    subjects = [
        str(form.get(f"subject{n}", "") or "").strip()[:250] for n in range(abtests.MAX_SUBJECTS)
    ]
    ab = {
        "subjects": [s for s in subjects if s],
        "sample_percent": sample_percent,
        "decide_after": decide_after,
        "metric": "clicks",
    }
    now = utcnow()
    try:
        # The form is offered for everyone only: not the audience of an earlier send.
        service.keep_send_audience(session, issue_id, SendIn(), now)
        abtests.start_ab(session, issue_id, ab, now, ctx.renderer)
    except DomainError as exc:
        session.rollback()
        return issue_page(request, session, ctx, issue_id, error=exc.message, status=exc.status)
    return redirect(f"{PREFIX}/issues/{issue_id}/results?done=sending")


@router.post("/{issue_id}/ab/decide")
def decide(
    issue_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    subject: Annotated[str, Form(max_length=250)] = "",
) -> Response:
    """Decide the test now: the subject picked, or the best rate so far."""
    try:
        abtests.decide(session, issue_id, utcnow(), subject or None)
    except DomainError as exc:
        session.rollback()
        return issue_page(request, session, ctx, issue_id, error=exc.message, status=exc.status)
    return redirect(f"{PREFIX}/issues/{issue_id}/results")
