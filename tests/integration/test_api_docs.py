"""/docs and /redoc work without internet: every asset they load is served by the app itself."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(client: TestClient, page: str) -> None:
    resp = client.get(page)
    assert resp.status_code == 200
    html = resp.text
    assert "cdn." not in html and "fonts.googleapis" not in html and "unpkg" not in html
    assets = ASSET.findall(html)
    assert any(a.endswith(".js") for a in assets), assets
    for url in assets:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is not on this server"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    assert "/openapi.json" in html
    assert client.get("/openapi.json").status_code == 200


def test_swagger_ui_calls_no_online_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_redoc_may_load_no_outside_image(client: TestClient) -> None:
    # ReDoc's bundle links its own logo on a CDN; the page's policy keeps it from loading.
    resp = client.get("/redoc")
    assert resp.headers["content-security-policy"] == "img-src 'self' data:"


def test_test_send_body_is_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/issues/{issue_id}/test"]["post"]
    body = op["requestBody"]
    assert body["required"] is True
    ref = body["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert schema["required"] == ["to"]
    assert schema["properties"]["to"]["type"] == "array"
    assert schema["properties"]["to"]["description"]
    assert schema["examples"] == [{"to": ["editor@example.org"]}]
    answer = op["responses"]["202"]["content"]["application/json"]["schema"]["$ref"]
    assert set(spec["components"]["schemas"][answer.rsplit("/", 1)[1]]["properties"]) == {
        "id",
        "queued",
    }
