"""Console pages for subscribers (search, add, edit, erase, import, export) and suppressions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.audience import tags
from app.console.attribute_form import KINDS, kind_of
from app.console.newsletter_choice import reader_newsletters
from app.console.queries import (
    SUBSCRIBER_SORTS,
    find_suppression,
    subscriber_deliveries,
    subscriber_table,
)
from app.console.web import PREFIX, ConsoleRoute, EditorDep, SessionDep, redirect, render, signed_in
from app.errors import DomainError, InvalidInput
from app.models import SubscriberStatus, utcnow
from app.subscribers import service as subscribers
from app.subscribers.csv_export import export_csv
from app.subscribers.csv_import import import_csv
from app.suppressions import service as suppressions
from app.suppressions.schemas import EDITOR_REASONS

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=PREFIX,
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)

NOTICES = {
    "added": "The subscriber is added.",
    "saved": "The changes are saved.",
    "tagged": "The tags are saved.",
    "attribute": "The attribute is saved.",
    "erased": "The subscriber's data is erased; the address stays suppressed.",
    "suppressed": "The address is on the suppression list.",
    "lifted": "The suppression is lifted; the address can sign up again.",
    "bulk-unsubscribe": "The selected subscribers are unsubscribed.",
    "bulk-tag": "The selected subscribers are tagged.",
    "bulk-erase": "The selected subscribers are erased; their addresses stay suppressed.",
}
STATUSES = [s.value for s in SubscriberStatus]
SORT_LABELS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "email": "Email A–Z",
    "name": "Name A–Z",
}


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("done", ""))


def _csv_response(body: str, filename: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# Subscribers ----------------------------------------------------------------------------------


@router.get("/subscribers")
def subscriber_list(
    request: Request,
    session: SessionDep,
    _: EditorDep,
    status: Annotated[str, Query(max_length=16)] = "",
    q: Annotated[str, Query(max_length=320)] = "",
    sort: Annotated[str, Query(max_length=16)] = "newest",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """Search, filter and sort subscribers, with the total and bulk actions."""
    table = subscriber_table(
        session,
        status=status if status in STATUSES else "",
        q=q,
        sort=sort if sort in SUBSCRIBER_SORTS else "newest",
        page=page,
    )
    return render(
        request,
        "subscribers.html",
        section="subscribers",
        table=table,
        rows=table.rows,
        status=status,
        q=q,
        sort=sort,
        sorts=SORT_LABELS,
        statuses=STATUSES,
        notice=_notice(request),
    )


@router.get("/subscribers/new")
def subscriber_new(request: Request, _: EditorDep) -> Response:
    """Show the form to add one subscriber."""
    return render(
        request, "subscriber_form.html", section="subscribers", row=None, form={}, error=None
    )


@router.post("/subscribers")
def subscriber_create(
    request: Request,
    session: SessionDep,
    _: EditorDep,
    email: Annotated[str, Form(max_length=400)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    status: Annotated[str, Form(max_length=16)] = "active",
) -> Response:
    """Add a subscriber (active, or pending with a confirmation email)."""
    try:
        if status not in ("active", "pending"):
            raise InvalidInput("Choose active or pending.")
        subscribers.create_subscriber(
            session, email=email, name=name, status=SubscriberStatus(status), now=utcnow()
        )
    except DomainError as exc:
        session.rollback()
        form = {"email": email, "name": name, "status": status}
        return render(
            request,
            "subscriber_form.html",
            status_code=exc.status,
            section="subscribers",
            row=None,
            form=form,
            error=exc.message,
        )
    return redirect(f"{PREFIX}/subscribers?done=added")


@router.get("/subscribers/import")
def import_form(request: Request, _: EditorDep) -> Response:
    """Show the CSV upload form."""
    return render(request, "import.html", section="subscribers", summary=None, error=None)


@router.post("/subscribers/import")
def import_upload(
    request: Request, session: SessionDep, _: EditorDep, file: UploadFile
) -> Response:
    """Import an `email,name` CSV and show what happened, rejected rows included."""
    try:
        summary = import_csv(session, file.file, now=utcnow(), on_chunk=session.commit)
    except DomainError as exc:
        session.rollback()
        return render(
            request,
            "import.html",
            status_code=exc.status,
            section="subscribers",
            summary=None,
            error=exc.message,
        )
    return render(request, "import.html", section="subscribers", summary=summary, error=None)


@router.get("/subscribers/export.csv")
def export_subscribers(session: SessionDep, _: EditorDep) -> Response:
    """Download every subscriber as CSV: the API's export (tags, newsletters, attributes)."""
    return _csv_response(export_csv(session), "subscribers.csv")


def reader_page(
    request: Request,
    session: Session,
    subscriber_id: int,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
    attribute_form: dict[str, str] | None = None,
) -> Response:
    """Render one reader's page: the edit form, tags, attributes, newsletters, deliveries."""
    row = subscribers.get_subscriber(session, subscriber_id)
    if form is None:
        form = {"email": row.email, "name": row.name, "status": row.status}
    return render(
        request,
        "subscriber_form.html",
        status_code=status,
        section="subscribers",
        row=row,
        form=form,
        error=error,
        notice=_notice(request) if error is None else None,
        deliveries=subscriber_deliveries(session, subscriber_id),
        tags=tags.tags_of(session, subscriber_id),
        attributes=[(k, v, kind_of(v)) for k, v in sorted((row.attributes or {}).items())],
        subscriptions=reader_newsletters(session, request.app.state.ctx.settings, subscriber_id),
        attribute_form=attribute_form or {"type": "string"},
        kinds=KINDS,
    )


@router.get("/subscribers/{subscriber_id}")
def subscriber_edit(
    subscriber_id: int, request: Request, session: SessionDep, _: EditorDep
) -> Response:
    """Show one subscriber with the edit form, their tags, attributes and newsletters."""
    return reader_page(request, session, subscriber_id)


@router.post("/subscribers/{subscriber_id}")
def subscriber_save(
    subscriber_id: int,
    request: Request,
    session: SessionDep,
    _: EditorDep,
    email: Annotated[str, Form(max_length=400)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    status: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Change the address, name or status (active/unsubscribed)."""
    try:
        row = subscribers.get_subscriber(session, subscriber_id)
        new_status = SubscriberStatus(status) if status and status != row.status else None
        subscribers.update_subscriber(
            session, subscriber_id, now=utcnow(), email=email, name=name, status=new_status
        )
    except (DomainError, ValueError) as exc:
        session.rollback()
        message = exc.message if isinstance(exc, DomainError) else "Unknown status."
        return reader_page(
            request,
            session,
            subscriber_id,
            form={"email": email, "name": name, "status": status},
            error=message,
            status=getattr(exc, "status", 422),
        )
    return redirect(f"{PREFIX}/subscribers/{subscriber_id}?done=saved")


@router.get("/subscribers/{subscriber_id}/erase")
def erase_confirm(
    subscriber_id: int, request: Request, session: SessionDep, _: EditorDep
) -> Response:
    """Ask before erasing: it cannot be undone."""
    row = subscribers.get_subscriber(session, subscriber_id)
    return render(request, "erase.html", section="subscribers", row=row)


@router.post("/subscribers/{subscriber_id}/erase")
def erase(subscriber_id: int, session: SessionDep, _: EditorDep) -> Response:
    """Erase the personal data; a suppression entry keeps the address from being mailed."""
    subscribers.erase_subscriber(session, subscriber_id, utcnow())
    return redirect(f"{PREFIX}/subscribers?done=erased")


# Suppressions ---------------------------------------------------------------------------------


@router.get("/suppressions")
def suppression_list(
    request: Request,
    session: SessionDep,
    _: EditorDep,
    reason: Annotated[str, Query(max_length=32)] = "",
    cursor: Annotated[str, Query(max_length=20)] = "",
    email: Annotated[str, Query(max_length=400)] = "",
) -> Response:
    """List suppression entries (hashes only), or look one address up by its hash."""
    error = None
    if email.strip():
        try:
            found = find_suppression(session, email)
        except DomainError as exc:
            found, error = None, exc.message
        rows, next_cursor = ([found] if found else []), None
    else:
        rows, next_cursor = suppressions.list_suppressions(
            session, reason=reason or None, cursor=cursor or None, limit=100
        )
    return render(
        request,
        "suppressions.html",
        section="suppressions",
        rows=rows,
        next_cursor=next_cursor,
        reason=reason,
        lookup=email.strip(),
        reasons=suppressions.REASONS,
        editor_reasons=EDITOR_REASONS,
        notice=_notice(request),
        error=error,
        form={},
    )


@router.post("/suppressions")
def suppression_add(
    request: Request,
    session: SessionDep,
    _: EditorDep,
    email: Annotated[str, Form(max_length=400)] = "",
    reason: Annotated[str, Form(max_length=32)] = "manual",
    detail: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Suppress one address; a current subscriber stops receiving issues."""
    try:
        if reason not in EDITOR_REASONS:
            raise InvalidInput("Choose one of the listed reasons.")
        suppressions.add_suppression(
            session, email=email, reason=reason, detail=detail, source="editor", now=utcnow()
        )
    except DomainError as exc:
        session.rollback()
        rows, next_cursor = suppressions.list_suppressions(session, limit=100)
        return render(
            request,
            "suppressions.html",
            status_code=exc.status,
            section="suppressions",
            rows=rows,
            next_cursor=next_cursor,
            reason="",
            lookup="",
            reasons=suppressions.REASONS,
            editor_reasons=EDITOR_REASONS,
            notice=None,
            error=exc.message,
            form={"email": email, "reason": reason, "detail": detail},
        )
    return redirect(f"{PREFIX}/suppressions?done=suppressed")


@router.get("/suppressions/export.csv")
def export_suppressions(session: SessionDep, _: EditorDep) -> Response:
    """Download the list as CSV (hashes, reasons, dates)."""
    return _csv_response(suppressions.export_csv(session), "suppressions.csv")


@router.post("/suppressions/{suppression_id}/remove")
def suppression_remove(suppression_id: int, session: SessionDep, _: EditorDep) -> Response:
    """Lift one entry."""
    suppressions.lift_suppression(session, suppression_id)
    return redirect(f"{PREFIX}/suppressions?done=lifted")
