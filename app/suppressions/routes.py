"""Editors' suppression list API: thin handlers over app.suppressions.service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, UploadFile

from app.deps import IdPath, SessionDep, require_editor
from app.errors import InvalidInput
from app.models import utcnow
from app.suppressions import service
from app.suppressions.schemas import (
    SuppressionImportOut,
    SuppressionIn,
    SuppressionOut,
    SuppressionPage,
)

IMPORT_MAX_BYTES = 50 * 1024 * 1024

# Every route here is for editors: the check runs before any body is read.
suppressions_router = APIRouter(
    prefix="/suppressions", tags=["suppressions"], dependencies=[Depends(require_editor)]
)


@suppressions_router.get("", response_model=SuppressionPage)
def list_suppressions(
    session: SessionDep,
    reason: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=service.PAGE_MAX)] = 100,
) -> SuppressionPage:
    """Return one page of entries, optionally of one reason."""
    rows, next_cursor = service.list_suppressions(
        session, reason=reason, cursor=cursor, limit=limit
    )
    return SuppressionPage(
        items=[SuppressionOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@suppressions_router.post("", status_code=201, response_model=SuppressionOut)
def add_suppression(data: SuppressionIn, session: SessionDep) -> Any:
    """Suppress one address (a current subscriber becomes unsubscribed)."""
    return service.add_suppression(
        session,
        email=data.email,
        reason=data.reason,
        detail=data.detail,
        source="editor",
        now=utcnow(),
    )


# Declared before /{suppression_id} routes so the literal path is never read as an id.
@suppressions_router.get("/export.csv")
def export_csv(session: SessionDep) -> Response:
    """Download the list as CSV (hashes only: addresses are never stored)."""
    return Response(
        service.export_csv(session),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="suppressions.csv"'},
    )


@suppressions_router.post("/import", response_model=SuppressionImportOut)
def import_csv(file: UploadFile, session: SessionDep) -> SuppressionImportOut:
    """Add entries from an uploaded CSV with an email or email_hash column."""
    data = file.file.read(IMPORT_MAX_BYTES + 1)
    if len(data) > IMPORT_MAX_BYTES:
        raise InvalidInput("The file is larger than 50 MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("The file is not UTF-8 text.") from None
    added, already, rejected = service.import_csv(session, text, now=utcnow())
    return SuppressionImportOut(added=added, already=already, rejected=rejected)


@suppressions_router.delete("/{suppression_id}", status_code=204)
def lift_suppression(suppression_id: IdPath, session: SessionDep) -> Response:
    """Lift an entry."""
    service.lift_suppression(session, suppression_id)
    return Response(status_code=204)
