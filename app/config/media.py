"""Images (issue 22) and the preflight link check: where uploads go, how links are checked."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from app.config import parsing


class MediaSettings(BaseModel):
    """Uploads by content hash under VAR_DIR/media or in S3, and preflight link checks."""

    # Uploads are stored by content hash under VAR_DIR/media, or in an S3-compatible bucket
    # named by MEDIA_URL (s3://bucket/prefix?endpoint=…&region=…).
    media_url: str = ""
    # At most 10 MB: the request limit of /media (app.web.limits) is 10 MB and a form's overhead.
    media_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=10 * 1024 * 1024)
    # Preflight link checks: per-link timeout, links fetched at once, minutes a result is kept.
    link_check_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    link_check_concurrency: int = Field(default=8, ge=1, le=64)
    link_check_cache_seconds: int = Field(default=600, ge=0)
    link_check_allow_private: bool = False  # let the link check reach private/loopback hosts

    _check_media_url = field_validator("media_url")(parsing.check_media_url)
