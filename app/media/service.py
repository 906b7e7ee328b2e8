"""Uploads: size cap, content check and resizing (app.media.images), then the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.errors import DomainError
from app.media.images import prepare
from app.media.store import MediaStore, valid_name


class UploadTooLarge(DomainError):
    """The upload is over MEDIA_MAX_BYTES."""

    status = 413
    code = "too_large"


@dataclass(frozen=True)
class Uploaded:
    """A stored image, as the upload answer shows it."""

    url: str
    name: str
    content_type: str
    width: int
    height: int
    bytes: int


def media_url(base_url: str, name: str) -> str:
    """Return the public URL of a stored image: BASE_URL/media/<sha256>.<ext>."""
    return f"{base_url}/media/{name}"


def too_large(limit: int) -> UploadTooLarge:
    """Return the refusal of an upload over `limit` bytes."""
    size = f"{limit / 1024 / 1024:g} MB"
    return UploadTooLarge(f"The image is too large: at most {size} is accepted.")


def store_upload(store: MediaStore, data: bytes, *, limit: int, base_url: str) -> Uploaded:
    """Check, resize and strip an uploaded image, store it by content hash; blocking."""
    if len(data) > limit:
        raise too_large(limit)
    image = prepare(data)
    store.put(image.name, image.data, image.content_type)
    return Uploaded(
        url=media_url(base_url, image.name),
        name=image.name,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        bytes=len(image.data),
    )


def own_media_size(store: MediaStore, base_url: str) -> Callable[[str], int | None]:
    """Return a function weighing images served by this server (None for any other URL)."""
    prefix = f"{base_url}/media/"

    def size_of(url: str) -> int | None:
        if not url.startswith(prefix):
            return None
        name = url[len(prefix) :]
        return store.size(name) if valid_name(name) else None

    return size_of
