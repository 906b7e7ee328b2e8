"""Issue 9, item 7: bad input is a 4xx with a sentence, never a 500 or a traceback."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from app.context import Context
from app.main import create_app
from tests.helpers import new_issue


def _sentence(resp: Any) -> None:
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
    assert "Traceback" not in resp.text
    if resp.headers.get("content-type", "").startswith("application/json"):
        assert resp.json()["detail"]


def test_nul_bytes_in_names_are_a_4xx(client: TestClient, editor: dict[str, str]) -> None:
    _sentence(client.post("/subscribe", json={"email": "nul@example.org", "name": "a\x00b"}))
    _sentence(client.post("/subscribe", data={"email": "nul2@example.org", "name": "a\x00b"}))
    _sentence(
        client.post(
            "/subscribers", json={"email": "n@example.org", "name": "x\x00"}, headers=editor
        )
    )


def test_nul_bytes_in_query_reason_detail_and_paths_are_a_4xx(
    client: TestClient, editor: dict[str, str]
) -> None:
    _sentence(client.get("/subscribers", params={"q": "a\x00b"}, headers=editor))
    _sentence(client.get("/suppressions", params={"reason": "a\x00b"}, headers=editor))
    _sentence(
        client.post(
            "/suppressions",
            json={"email": "s@example.org", "detail": "a\x00b"},
            headers=editor,
        )
    )
    _sentence(client.get("/archive/a%00b"))


def test_nul_bytes_in_csv_fields_are_a_4xx_naming_the_line(
    client: TestClient, editor: dict[str, str]
) -> None:
    data = b"email,name\nok@example.org,Ok\nbad@example.org,Na\x00me\n"
    r = client.post(
        "/subscribers/import", files={"file": ("a.csv", io.BytesIO(data))}, headers=editor
    )
    _sentence(r)
    assert r.json()["detail"].startswith("Line 3:")


def test_deeply_nested_json_is_a_4xx(client: TestClient, editor: dict[str, str]) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    headers = {"content-type": "application/json"}
    _sentence(client.post("/subscribe", content=deep, headers=headers))
    _sentence(client.post("/issues", content=deep, headers={**editor, **headers}))


def test_huge_ids_and_cursors_are_a_4xx(client: TestClient, editor: dict[str, str]) -> None:
    for path in ("/issues/2147483648", "/subscribers/99999999999999999999", "/issues/-1"):
        r = client.get(path, headers=editor)
        assert r.status_code == 422, (path, r.status_code)
        assert "less than or equal to 2147483647" in r.text or "greater than" in r.text
    _sentence(client.get("/subscribers", params={"cursor": "9" * 18}, headers=editor))
    _sentence(client.get("/suppressions", params={"cursor": "9" * 18}, headers=editor))
    _sentence(client.delete("/suppressions/9223372036854775808", headers=editor))


def test_send_at_at_the_edge_of_time_is_a_4xx(client: TestClient, editor: dict[str, str]) -> None:
    issue = new_issue(client, editor)
    for when in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        _sentence(
            client.post(f"/issues/{issue['id']}/send", json={"send_at": when}, headers=editor)
        )
        _sentence(client.patch(f"/issues/{issue['id']}", json={"send_at": when}, headers=editor))


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_an_unexpected_error_is_a_500_without_a_traceback(
    ctx: Context, accept: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(ctx.settings, context=ctx)
    boom = APIRouter()

    @boom.get("/issues-boom")
    @boom.get("/boom")
    def explode() -> None:
        raise RuntimeError("secret internals")

    app.include_router(boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        for path in ("/issues-boom", "/boom"):
            r = c.get(path, headers={"accept": accept})
            assert r.status_code == 500
            assert "secret internals" not in r.text and "Traceback" not in r.text
            if path.startswith("/issues") or accept == "application/json":
                assert r.json()["code"] == "internal"
            else:
                assert "<html" in r.text.lower()
    assert "secret internals" in caplog.text
