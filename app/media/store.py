"""Where images live: a small protocol, a local directory, and an S3-compatible bucket.

Every object is named by the sha256 of its bytes, so a name never changes meaning: writing the
same name twice writes the same bytes, and readers may cache forever.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

NAME = re.compile(r"^(?P<digest>[0-9a-f]{64})\.(?P<ext>jpg|png|gif|webp)$")


def valid_name(name: str) -> bool:
    """Tell whether `name` is a stored image's name (<sha256>.<ext>); nothing else is looked up."""
    return NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class StoredImage:
    """An image read back from the store."""

    data: bytes
    content_type: str


class MediaStore(Protocol):
    """Keep image bytes by name; every method blocks (call from a thread)."""

    def put(self, name: str, data: bytes, content_type: str) -> None:
        """Store `data` under `name` (idempotent: the name is the content's hash)."""

    def get(self, name: str) -> StoredImage | None:
        """Return the image stored under `name`, or None."""

    def size(self, name: str) -> int | None:
        """Return the size in bytes of the image under `name`, or None when absent."""


_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}


def content_type(name: str) -> str:
    """Return the MIME type a stored name implies."""
    return _TYPES[name.rsplit(".", 1)[1]]


class LocalMediaStore:
    """Images as files in one directory (VAR_DIR/media by default)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        if not valid_name(name):
            raise ValueError(f"not a media name: {name!r}")
        return self.root / name

    def put(self, name: str, data: bytes, content_type: str) -> None:
        """Write the file atomically (a reader never sees half an image)."""
        path = self._path(name)
        if path.exists():
            return  # same name, same bytes
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, name: str) -> StoredImage | None:
        """Read the file, or None."""
        try:
            return StoredImage(self._path(name).read_bytes(), content_type(name))
        except (FileNotFoundError, ValueError):
            return None

    def size(self, name: str) -> int | None:
        """Return the file's size, or None."""
        try:
            return self._path(name).stat().st_size
        except (FileNotFoundError, ValueError):
            return None


class S3MediaStore:
    """Images in an S3-compatible bucket (AWS, MinIO, Garage…) through boto3.

    MEDIA_URL is `s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1`;
    credentials come from boto3's usual places (AWS_ACCESS_KEY_ID, a profile, a role).
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def _key(self, name: str) -> str:
        if not valid_name(name):
            raise ValueError(f"not a media name: {name!r}")
        return self.prefix + name

    def put(self, name: str, data: bytes, content_type: str) -> None:
        """Upload the object with its type and an immutable cache lifetime."""
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._key(name),
            Body=data,
            ContentType=content_type,
            CacheControl="public, max-age=31536000, immutable",
        )

    def get(self, name: str) -> StoredImage | None:
        """Download the object, or None."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
        except ValueError:
            return None
        except self.client.exceptions.NoSuchKey:
            return None
        return StoredImage(answer["Body"].read(), content_type(name))

    def size(self, name: str) -> int | None:
        """Return the object's size from a HEAD, or None."""
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self._key(name))
        except ValueError:
            return None
        except self.client.exceptions.ClientError:
            return None
        return int(answer["ContentLength"])


def parse_media_url(url: str) -> tuple[str, str, str | None, str | None]:
    """Split `s3://bucket/prefix?endpoint=…&region=…` into (bucket, prefix, endpoint, region)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError("must look like s3://bucket/prefix?endpoint=https://…&region=…")
    query = parse_qs(parts.query)
    endpoint = query.get("endpoint", [None])[0]
    region = query.get("region", [None])[0]
    return parts.netloc, parts.path.strip("/"), endpoint, region


def make_store(var_dir: Path, media_url: str) -> MediaStore:
    """Return the store MEDIA_URL names, or the local directory VAR_DIR/media."""
    if not media_url:
        return LocalMediaStore(var_dir / "media")
    # boto3 is an optional extra (morningpost[s3]): only deployments with a bucket need it.
    import boto3

    bucket, prefix, endpoint, region = parse_media_url(media_url)
    client = boto3.client("s3", endpoint_url=endpoint, region_name=region)
    return S3MediaStore(client, bucket, prefix)
