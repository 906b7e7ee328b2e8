"""Console page for the relays: state, today's count against the quota (a bar), last error."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.console.web import PREFIX, ConsoleRoute, EditorDep, SessionDep, render, signed_in
from app.sends.store.relays import relay_report

router = APIRouter(
    prefix=PREFIX,
    route_class=ConsoleRoute,
    dependencies=[Depends(signed_in)],
    include_in_schema=False,
)


@router.get("/relays")
def relay_list(request: Request, session: SessionDep, _: EditorDep) -> Response:
    """Show each relay with its state, quota bar, limits and last error."""
    settings = request.app.state.ctx.settings
    rows = relay_report(session.connection(), settings.relays)
    return render(request, "relays.html", section="relays", rows=rows)
