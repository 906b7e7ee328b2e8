"""Images in an S3-compatible bucket (MORNINGPOST_MEDIA_URL), on moto's S3 server on loopback."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.context import Context
from app.media.store import S3MediaStore, make_store, parse_media_url

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

BUCKET = "morningpost-media"


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run moto's S3 server on a free loopback port, with throwaway credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def s3_ctx(ctx: Context, s3_endpoint: str) -> Context:
    """The context with MEDIA_URL naming the bucket."""
    url = f"s3://{BUCKET}/issues?endpoint={s3_endpoint}&region=us-east-1"
    ctx.settings = ctx.settings.model_copy(update={"media_url": url})
    ctx._media = None
    return ctx


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1600, 800), (30, 60, 90)).save(out, format="JPEG")
    return out.getvalue()


def test_uploads_go_to_the_bucket_and_are_served_from_it(
    client: TestClient, editor: dict[str, str], s3_ctx: Context, s3_endpoint: str
) -> None:
    assert isinstance(s3_ctx.media, S3MediaStore)
    resp = client.post("/media", files={"file": ("a.jpg", _jpeg(), "image/jpeg")}, headers=editor)
    assert resp.status_code == 201, resp.text
    name = resp.json()["name"]
    assert resp.json()["width"] == 1200

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    head: dict[str, Any] = s3.head_object(Bucket=BUCKET, Key=f"issues/{name}")
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentLength"] == resp.json()["bytes"]
    assert s3_ctx.media.size(name) == resp.json()["bytes"]

    served = client.get(f"/media/{name}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert "immutable" in served.headers["cache-control"]
    assert Image.open(io.BytesIO(served.content)).size == (1200, 600)
    assert client.get("/media/" + "0" * 64 + ".jpg").status_code == 404
    assert s3_ctx.media.size("0" * 64 + ".jpg") is None


def test_media_url_is_checked_at_start(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="s3://bucket"):
        Settings(media_url="https://bucket.example/x")
    assert parse_media_url("s3://b/p/q?endpoint=http://127.0.0.1:9000&region=eu-west-1") == (
        "b",
        "p/q",
        "http://127.0.0.1:9000",
        "eu-west-1",
    )
    assert not isinstance(make_store(tmp_path, ""), S3MediaStore)
