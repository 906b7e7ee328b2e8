"""Editor API for subscribers: list, add, read, change, erase, import. Every route needs a token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, UploadFile

from app.audience.newsletters import subscriptions_of
from app.deps import ContextDep, IdPath, SessionDep, require_editor
from app.errors import InvalidInput
from app.models import DeliveryStatus, SubscriberStatus, utcnow
from app.sends.schemas import DeliveryPageOut
from app.sends.store.log import MAX_LIMIT, DeliveryPage
from app.subscribers import service
from app.subscribers.csv_export import export_csv
from app.subscribers.csv_import import import_csv
from app.subscribers.schemas import (
    ImportSummaryOut,
    SubscriberCreate,
    SubscriberOut,
    SubscriberPage,
    SubscriberPatch,
)

# Every route here is for editors: the check runs before any body is read.
router = APIRouter(
    prefix="/subscribers", tags=["subscribers"], dependencies=[Depends(require_editor)]
)


@router.get("", response_model=SubscriberPage)
def list_subscribers(
    session: SessionDep,
    status: SubscriberStatus | None = None,
    q: Annotated[str | None, Query(max_length=320)] = None,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=service.PAGE_MAX)] = 50,
) -> SubscriberPage:
    """Return one page of subscribers, filtered by status and a search string."""
    rows, next_cursor = service.list_subscribers(
        session, status=status, q=q, cursor=cursor, limit=limit
    )
    return SubscriberPage(
        items=[SubscriberOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.post("", response_model=SubscriberOut, status_code=201)
def create_subscriber(
    body: SubscriberCreate, session: SessionDep, ctx: ContextDep
) -> SubscriberOut:
    """Add a subscriber (consent source "editor")."""
    row = service.create_subscriber(
        session,
        email=body.email,
        name=body.name,
        status=SubscriberStatus(body.status),
        now=utcnow(),
        timezone=body.timezone,
        default_timezone=ctx.settings.default_timezone,
    )
    return SubscriberOut.model_validate(row)


@router.post("/import", response_model=ImportSummaryOut)
def import_subscribers(file: UploadFile, session: SessionDep, ctx: ContextDep) -> ImportSummaryOut:
    """Import an uploaded `email,name[,timezone]` CSV; answer with the summary."""
    if file.filename is not None and not file.filename.lower().endswith((".csv", ".txt")):
        raise InvalidInput("Upload a .csv file with the columns email,name.")
    # All or nothing: the request's one transaction commits after the last row.
    summary = import_csv(
        session, file.file, now=utcnow(), default_timezone=ctx.settings.default_timezone
    )
    return ImportSummaryOut.model_validate(summary.as_dict())


@router.get(
    "/export.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def export_subscribers(session: SessionDep) -> Response:
    """Return every subscriber as CSV with tags, newsletters and attr.<name> columns."""
    return Response(
        export_csv(session),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )


@router.get("/{subscriber_id}/deliveries", response_model=DeliveryPageOut)
def subscriber_deliveries(
    subscriber_id: IdPath,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> DeliveryPage:
    """Page through every issue sent to one reader, with each delivery's fate."""
    return service.subscriber_deliveries(
        session, subscriber_id, status=status, cursor=cursor, limit=limit
    )


@router.get("/{subscriber_id}", response_model=SubscriberOut)
def get_subscriber(subscriber_id: IdPath, session: SessionDep) -> SubscriberOut:
    """Return one subscriber, with their newsletters, tags and attributes."""
    out = SubscriberOut.model_validate(service.get_subscriber(session, subscriber_id))
    out.newsletters = subscriptions_of(session, subscriber_id)
    return out


@router.patch("/{subscriber_id}", response_model=SubscriberOut)
def patch_subscriber(
    subscriber_id: IdPath, body: SubscriberPatch, session: SessionDep
) -> SubscriberOut:
    """Change a subscriber's address, name or status."""
    row = service.update_subscriber(
        session,
        subscriber_id,
        now=utcnow(),
        email=body.email,
        name=body.name,
        status=SubscriberStatus(body.status) if body.status else None,
        timezone=body.timezone,
        attributes=body.attributes,
    )
    return SubscriberOut.model_validate(row)


@router.delete("/{subscriber_id}", status_code=204)
def delete_subscriber(subscriber_id: IdPath, session: SessionDep) -> Response:
    """Erase a subscriber's personal data, keeping a suppression entry."""
    service.erase_subscriber(session, subscriber_id, utcnow())
    return Response(status_code=204)
