"""Console page for sequences: steps on a timeline with their numbers, pause, resume, add."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.audience.newsletters import list_newsletters
from app.automations.sequences import service
from app.console.web import PREFIX, ConsoleRoute, EditorDep, SessionDep, redirect, render, signed_in
from app.errors import DomainError
from app.issues.service import list_issues
from app.models import Issue, utcnow

router = APIRouter(
    prefix=PREFIX,
    route_class=ConsoleRoute,
    dependencies=[Depends(signed_in)],
    include_in_schema=False,
)

NOTICES = {
    "added": "The sequence is on. Readers who match its trigger from now on start at step 1.",
    "paused": "Paused: no new step goes out until you resume.",
    "active": "Resumed: steps that fell due meanwhile go out now.",
    "removed": "The sequence is removed; steps not yet sent were cancelled.",
}
STEP_ROWS = 4


def _page(
    request: Request, session: SessionDep, status_code: int = 200, **extra: object
) -> Response:
    now = utcnow()
    rows = []
    for seq in service.list_sequences(session):
        stats = service.sequence_stats(session, seq.id, now)
        for step in stats["steps"]:
            carrier = session.get(Issue, step["carrier"])  # the step's current text
            step["subject"] = carrier.subject if carrier else "(removed)"
        rows.append((seq, service.trigger_out(seq.trigger), stats))
    context: dict[str, object] = {
        "rows": rows,
        "drafts": list_issues(session, "draft"),
        "newsletters": list_newsletters(session),
        "notice": NOTICES.get(request.query_params.get("done", "")),
        "error": None,
        "form": {},
        "step_rows": STEP_ROWS,
    }
    context.update(extra)
    return render(
        request, "sequences.html", status_code=status_code, section="sequences", **context
    )


@router.get("/sequences")
def sequence_list(request: Request, session: SessionDep, _: EditorDep) -> Response:
    """List the sequences: each step on a timeline with its numbers."""
    return _page(request, session)


async def _step_rows(request: Request) -> list[dict[str, Any]]:
    """Read the form's step rows that name an issue (their names are numbered, not declared)."""
    form = await request.form()
    steps: list[dict[str, Any]] = []
    for n in range(STEP_ROWS):
        issue = str(form.get(f"issue{n}", "") or "")
        if issue.isdigit():
            at = str(form.get(f"at{n}", "") or "").strip() or None
            after = str(form.get(f"after{n}", "") or "").strip() or "PT0S"
            steps.append({"issue": int(issue), "after": after[:40], "at": at})
    return steps


@router.post("/sequences")
def sequence_add(
    request: Request,
    session: SessionDep,
    _: EditorDep,
    steps: Annotated[list[dict[str, Any]], Depends(_step_rows)],
    name: Annotated[str, Form(max_length=200)] = "",
    trigger: Annotated[str, Form(max_length=16)] = "confirmed",
    tag: Annotated[str, Form(max_length=64)] = "",
    newsletter: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    """Add a sequence (of a newsletter) from the rows of the form that name an issue.

    A sync handler (a worker thread): the form is read on the loop by _step_rows, and the
    writes and the page run off it, so a slow database never stalls other requests.
    """
    wanted: Any = {"tag": tag} if trigger == "tag" else "confirmed"
    try:
        service.create_sequence(session, name, wanted, steps, False, newsletter or None)
    except DomainError as exc:
        session.rollback()
        kept = {"name": name, "trigger": trigger, "tag": tag, "newsletter": newsletter}
        return _page(request, session, exc.status, error=exc.message, form=kept)
    return redirect(f"{PREFIX}/sequences?done=added")


@router.post("/sequences/{sequence_id}/status")
def sequence_status(
    sequence_id: int,
    session: SessionDep,
    _: EditorDep,
    status: Annotated[str, Form(max_length=16)] = "paused",
) -> Response:
    """Pause or resume a sequence."""
    service.update_sequence(session, sequence_id, None, status, None, utcnow())
    return redirect(f"{PREFIX}/sequences?done={'active' if status == 'active' else 'paused'}")


@router.post("/sequences/{sequence_id}/remove")
def sequence_remove(sequence_id: int, session: SessionDep, _: EditorDep) -> Response:
    """Remove a sequence; steps queued and not yet sent are cancelled."""
    service.delete_sequence(session, sequence_id, utcnow())
    return redirect(f"{PREFIX}/sequences?done=removed")
