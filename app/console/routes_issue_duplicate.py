"""Console action starting a new draft from an issue (tomorrow's edition)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from app.console.web import PREFIX, ConsoleRoute, EditorDep, SessionDep, redirect, signed_in
from app.deps import ContextDep
from app.issues import service

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/issues",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)


@router.post("/{issue_id}/duplicate")
def duplicate_issue(issue_id: int, session: SessionDep, ctx: ContextDep, _: EditorDep) -> Response:
    """Start a new draft from an issue's subject, preheader and blocks (tomorrow's edition)."""
    copy = service.duplicate_issue(session, issue_id, ctx.renderer)
    return redirect(f"{PREFIX}/issues/{copy.id}/edit?done=duplicated")
