"""Bulk actions on subscribers: unsubscribe, tag or erase the ones ticked, after a confirmation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from app.audience import tags
from app.console.queries import subscribers_by_id
from app.console.web import (
    PREFIX,
    ConsoleRoute,
    EditorDep,
    SessionDep,
    posted_form,
    redirect,
    render,
    signed_in,
)
from app.errors import InvalidInput
from app.models import SubscriberStatus, utcnow
from app.subscribers import service as subscribers

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/subscribers",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)

ACTIONS = {
    "unsubscribe": ("Unsubscribe", "They stop getting issues; they can sign up again."),
    "tag": ("Tag", "They get the tag {tag}; readers who have it already keep it as it is."),
    "erase": (
        "Erase",
        "Their addresses and names are deleted for good; only a one-way hash stays on the "
        "suppression list, so the addresses are never mailed again. This cannot be undone.",
    ),
}
BULK_MAX = 200


def _chosen(form: FormData) -> tuple[str, list[int], str]:
    action = str(form.get("action") or "")
    if action not in ACTIONS:
        raise InvalidInput("Choose what to do with the selected subscribers.")
    tag = tags.clean_tag(str(form.get("tag") or "")[:100]) if action == "tag" else ""
    ids: list[int] = []
    for value in form.getlist("ids")[: BULK_MAX + 1]:
        if not isinstance(value, str) or not value.isdigit():
            raise InvalidInput("The selection was not understood; nothing changed.")
        ids.append(int(value))
    if not ids:
        raise InvalidInput("Tick at least one subscriber first; nothing changed.")
    if len(ids) > BULK_MAX:
        raise InvalidInput(f"At most {BULK_MAX} subscribers at once; nothing changed.")
    return action, ids, tag


@router.post("/bulk")
def bulk_confirm(
    request: Request,
    session: SessionDep,
    _: EditorDep,
    form: Annotated[FormData, Depends(posted_form)],
) -> Response:
    """Ask before a bulk action: how many, who, and what it does."""
    action, ids, tag = _chosen(form)
    rows = subscribers_by_id(session, ids)
    verb, explanation = ACTIONS[action]
    return render(
        request,
        "subscribers_bulk.html",
        section="subscribers",
        action=action,
        verb=verb,
        explanation=explanation.format(tag=tag),
        tag=tag,
        rows=rows,
        back=str(form.get("back") or ""),
    )


@router.post("/bulk/apply")
def bulk_apply(
    session: SessionDep,
    _: EditorDep,
    form: Annotated[FormData, Depends(posted_form)],
) -> Response:
    """Apply a confirmed bulk action to the listed subscribers."""
    action, ids, tag = _chosen(form)
    now = utcnow()
    for row in subscribers_by_id(session, ids):
        if action == "erase":
            subscribers.erase_subscriber(session, row.id, now)
        elif action == "tag":
            tags.add_tags(session, row.id, [tag], now)
        elif row.status in (SubscriberStatus.active, SubscriberStatus.pending):
            subscribers.update_subscriber(
                session, row.id, now=now, status=SubscriberStatus.unsubscribed
            )
    return redirect(f"{PREFIX}/subscribers?done=bulk-{action}")
