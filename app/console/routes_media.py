"""Console image upload: the Markdown editor's button, drop and paste post here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import JSONResponse

from app.console.web import PREFIX, EditorDep, signed_in
from app.deps import ContextDep
from app.errors import DomainError
from app.media.routes import upload

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(signed_in)])


@router.post("/media")
async def upload_media(
    ctx: ContextDep, _: EditorDep, file: Annotated[UploadFile | None, File()] = None
) -> JSONResponse:
    """Store an image for the editor (session + X-CSRF-Token); answer JSON for the script."""
    try:
        stored: dict[str, Any] = await upload(ctx, file)
    except DomainError as exc:
        return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=exc.status)
    return JSONResponse(stored, status_code=201)
