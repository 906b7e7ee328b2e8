"""Issue 9, item 8: body size limits are enforced while the body streams in."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.context import Context
from app.main import create_app
from app.web.limits import DEFAULT_LIMIT, json_depth, limit_for

CHUNK = 64 * 1024


def _stream(ctx: Context, path: str, content_type: str, chunks: int) -> tuple[int, int, bytes]:
    """POST `chunks` × 64 KB to `path` (no Content-Length); return (status, chunks read, body)."""
    app = create_app(ctx.settings, context=ctx)
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read >= chunks:
            return {"type": "http.disconnect"}
        read += 1
        data = b"x" * CHUNK
        if read == 1 and content_type.startswith("multipart/"):
            data = b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\n' + data
        return {"type": "http.request", "body": data, "more_body": read < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", content_type.encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], read, body


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/subscribe", "application/json"),
        ("/subscribe", "application/x-www-form-urlencoded"),
        ("/subscribe", "multipart/form-data; boundary=xyz"),
        ("/webhooks/bounce", "message/rfc822"),
        ("/webhooks/bounce", "application/json"),
    ],
)
def test_a_huge_streamed_body_is_a_413_without_reading_it_all(
    ctx: Context, path: str, content_type: str
) -> None:
    # 400 MB offered in 64 KB chunks: the answer must come after little more than the limit.
    total = 400 * 1024 * 1024 // CHUNK
    status, read, body = _stream(ctx, path, content_type, total)
    assert status == 413
    assert b"too large" in body
    assert read <= limit_for(path) // CHUNK + 2


def test_a_declared_huge_body_is_refused_before_reading(client: TestClient) -> None:
    r = client.post(
        "/subscribe",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": str(10**9)},
    )
    assert r.status_code == 413 and "at most 64 KB" in r.json()["detail"]


def test_limits_per_path() -> None:
    assert limit_for("/subscribe") == DEFAULT_LIMIT
    assert limit_for("/webhooks/bounce") > DEFAULT_LIMIT
    assert limit_for("/subscribers/import") > limit_for("/webhooks/bounce")
    assert limit_for("/issuesx") == DEFAULT_LIMIT


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth(b'{"a": "[[[[{{{{", "b": [1, {"c": "\\"]]"}]}') == 3
