"""Media over HTTP: editors upload (POST /media), anyone reads (GET /media/<sha256>.<ext>)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import Response

from app.context import Context
from app.deps import ContextDep, require_editor
from app.errors import InvalidInput, NotFound
from app.media.service import store_upload, too_large
from app.media.store import valid_name

# The name is the content's hash: the bytes behind a URL never change, so caches keep them.
IMMUTABLE = "public, max-age=31536000, immutable"

media_api_router = APIRouter(tags=["media"])
media_files_router = APIRouter(include_in_schema=False)


async def read_upload(file: UploadFile | None, limit: int) -> bytes:
    """Read an uploaded file, refusing (413) as soon as it passes `limit` bytes."""
    if file is None:
        raise InvalidInput("Send the image as a multipart form field named 'file'.")
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise too_large(limit)
    if not data:
        raise InvalidInput("The uploaded file is empty.")
    return data


async def upload(ctx: Context, file: UploadFile | None) -> dict[str, Any]:
    """Store one uploaded image; decoding and resizing run in a thread, off the event loop."""
    settings = ctx.settings
    data = await read_upload(file, settings.media_max_bytes)
    stored = await asyncio.to_thread(
        store_upload, ctx.media, data, limit=settings.media_max_bytes, base_url=settings.base_url
    )
    return asdict(stored)


@media_api_router.post(
    "/media", status_code=201, dependencies=[Depends(require_editor)], summary="Upload an image"
)
async def upload_media(
    ctx: ContextDep, file: Annotated[UploadFile | None, File()] = None
) -> dict[str, Any]:
    """Upload a JPEG, PNG, GIF or WebP image; it is resized to 1200 px wide at most, stripped
    of metadata and served at the returned `url` (BASE_URL/media/<sha256>.<ext>)."""
    return await upload(ctx, file)


@media_files_router.api_route("/media/{name}", methods=["GET", "HEAD"])
def media_file(name: str, request: Request, ctx: ContextDep) -> Response:
    """Serve a stored image with a year-long, immutable cache lifetime."""
    if not valid_name(name):
        raise NotFound("Nothing is here.")
    etag = f'"{name.split(".", 1)[0]}"'
    headers = {
        "Cache-Control": IMMUTABLE,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        # An SVG smuggled in would still not run: images only, nothing else from this answer.
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    stored = ctx.media.get(name)
    if stored is None:
        raise NotFound("No such image.")
    body = b"" if request.method == "HEAD" else stored.data
    headers["Content-Length"] = str(len(stored.data))
    return Response(body, media_type=stored.content_type, headers=headers)
