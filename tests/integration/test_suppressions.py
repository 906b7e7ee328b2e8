"""Editors' suppression list: auth, add/list/filter/page, lift, CSV export and import."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.context import Context
from app.db import session_scope
from app.main import create_app
from app.models import Subscriber
from app.suppressions.routes import suppressions_router
from app.tokens import hash_secret
from tests.helpers import add_subscribers


@pytest.fixture
def api(ctx: Context) -> Iterator[TestClient]:
    """Return a client on the app with the suppression router (added here until main wires it)."""
    app = create_app(ctx.settings, context=ctx)
    if not any(getattr(r, "path", "") == "/suppressions" for r in app.routes):
        app.include_router(suppressions_router)
    with TestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/suppressions"),
        ("POST", "/suppressions"),
        ("DELETE", "/suppressions/1"),
        ("GET", "/suppressions/export.csv"),
        ("POST", "/suppressions/import"),
    ],
)
def test_every_route_needs_an_editor(api: TestClient, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer mp_wrong"}):
        assert api.request(method, path, headers=headers).status_code == 401


def test_add_hashes_the_address_and_unsubscribes_a_subscriber(
    api: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    sub_id = add_subscribers(ctx, 1)[0]
    r = api.post("/suppressions", json={"email": " Reader0@Example.org "}, headers=editor)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email_hash"] == hash_secret("reader0@example.org")
    assert (body["reason"], body["source"]) == ("manual", "editor")
    assert "reader0" not in r.text  # the address is not kept
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Subscriber, sub_id).status == "unsubscribed"
    again = api.post("/suppressions", json={"email": "reader0@example.org"}, headers=editor)
    assert again.status_code == 409
    bad = api.post("/suppressions", json={"email": "not an address"}, headers=editor)
    assert bad.status_code == 422
    # A suppressed address cannot be added back as a subscriber until the entry is lifted.
    assert api.delete(f"/suppressions/{body['id']}", headers=editor).status_code == 204
    assert api.delete(f"/suppressions/{body['id']}", headers=editor).status_code == 404
    with session_scope(ctx.sessions) as session:
        assert session.get_one(Subscriber, sub_id).status == "unsubscribed"  # not resubscribed


def test_list_filters_by_reason_and_pages(api: TestClient, editor: dict[str, str]) -> None:
    for i in range(5):
        reason = "complaint" if i % 2 else "manual"
        r = api.post(
            "/suppressions", json={"email": f"p{i}@example.org", "reason": reason}, headers=editor
        )
        assert r.status_code == 201
    page = api.get("/suppressions?limit=2", headers=editor).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = api.get(f"/suppressions?limit=10&cursor={page['next_cursor']}", headers=editor).json()
    assert len(rest["items"]) == 3 and rest["next_cursor"] is None
    complaints = api.get("/suppressions?reason=complaint", headers=editor).json()["items"]
    assert [c["reason"] for c in complaints] == ["complaint", "complaint"]
    assert api.get("/suppressions?cursor=zz", headers=editor).status_code == 422


def test_export_then_import_round_trip(api: TestClient, editor: dict[str, str]) -> None:
    api.post("/suppressions", json={"email": "a@example.org"}, headers=editor)
    api.post(
        "/suppressions", json={"email": "b@example.org", "reason": "complaint"}, headers=editor
    )
    r = api.get("/suppressions/export.csv", headers=editor)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["reason"] for row in rows] == ["manual", "complaint"]
    assert set(rows[0]) == {"email_hash", "reason", "source", "created_at"}
    assert rows[0]["email_hash"] == hash_secret("a@example.org")

    upload = "email,reason\nA@example.org,manual\nnew@example.org,complaint\nbroken,\n,\n"
    files = {"file": ("s.csv", upload.encode(), "text/csv")}
    result = api.post("/suppressions/import", files=files, headers=editor).json()
    assert (result["added"], result["already"], len(result["rejected"])) == (1, 1, 2)
    hashes = f"email_hash\n{hash_secret('h@example.org')}\nnothex\n"
    files = {"file": ("h.csv", hashes.encode(), "text/csv")}
    result = api.post("/suppressions/import", files=files, headers=editor).json()
    assert (result["added"], result["already"]) == (1, 0)
    assert result["rejected"] == ["line 3: email_hash is not a SHA-256 hex digest"]
    files = {"file": ("x.csv", b"name\nx\n", "text/csv")}
    assert api.post("/suppressions/import", files=files, headers=editor).status_code == 422
    total = api.get("/suppressions", headers=editor).json()["items"]
    assert len(total) == 4
