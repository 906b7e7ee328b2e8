"""Editor API for subscribers: auth, list/search/pagination, CRUD, erase, CSV import."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import (
    Delivery,
    Issue,
    IssueStatus,
    OutboxMessage,
    Subscriber,
    Suppression,
    utcnow,
)
from app.subscribers.csv_import import REJECTED_LIMIT, import_csv
from app.tokens import hash_secret


def add(client: TestClient, editor: dict[str, str], email: str, **extra: Any) -> dict[str, Any]:
    """Add a subscriber as an editor and return its JSON."""
    r = client.post("/subscribers", json={"email": email, **extra}, headers=editor)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/subscribers"),
        ("POST", "/subscribers"),
        ("GET", "/subscribers/1"),
        ("PATCH", "/subscribers/1"),
        ("DELETE", "/subscribers/1"),
        ("POST", "/subscribers/import"),
    ],
)
def test_every_route_needs_an_editor(client: TestClient, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer mp_wrong"}, {"Authorization": "Basic eA=="}):
        r = client.request(method, path, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["code"] == "unauthorized"


def test_create_get_patch(client: TestClient, ctx: Context, editor: dict[str, str]) -> None:
    sub = add(client, editor, "Ed@Example.org", name="Ed")
    assert (sub["email"], sub["status"], sub["consent_source"]) == (
        "ed@example.org",
        "active",
        "editor",
    )
    assert client.get(f"/subscribers/{sub['id']}", headers=editor).json()["name"] == "Ed"
    r = client.patch(
        f"/subscribers/{sub['id']}", json={"name": "Edna", "status": "unsubscribed"}, headers=editor
    )
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["status"]) == ("Edna", "unsubscribed")
    assert r.json()["unsubscribed_at"] is not None
    r = client.patch(f"/subscribers/{sub['id']}", json={"status": "active"}, headers=editor)
    assert r.json()["status"] == "active" and r.json()["unsubscribed_at"] is None
    r = client.patch(
        f"/subscribers/{sub['id']}", json={"email": "EDNA@example.org"}, headers=editor
    )
    assert r.json()["email"] == "edna@example.org"
    # Active editor additions send nothing; they are not a double opt-in.
    with ctx.sessions() as s:
        assert s.scalars(select(OutboxMessage)).all() == []


def test_create_pending_sends_a_confirmation(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    sub = add(client, editor, "p@example.org", status="pending")
    assert sub["status"] == "pending"
    with ctx.sessions() as s:
        [msg] = s.scalars(select(OutboxMessage)).all()
        assert (msg.kind, msg.subscriber_id) == ("confirm", sub["id"])


def test_create_refusals(client: TestClient, ctx: Context, editor: dict[str, str]) -> None:
    add(client, editor, "dup@example.org")
    r = client.post("/subscribers", json={"email": "DUP@example.org"}, headers=editor)
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    with session_scope(ctx.sessions) as s:
        s.add(Suppression(email_hash=hash_secret("sup@example.org"), reason="hard_bounce"))
    r = client.post("/subscribers", json={"email": "sup@example.org"}, headers=editor)
    assert r.status_code == 409 and "suppression" in r.json()["detail"]
    for body in (
        {"email": "nope"},
        {"email": "a@example.org", "name": "x\ny"},
        {"email": "a@example.org", "status": "bounced"},
        {"email": "a@example.org", "extra": 1},
    ):
        r = client.post("/subscribers", json=body, headers=editor)
        assert r.status_code == 422, body
        assert r.json()["detail"]


def test_patch_refusals(client: TestClient, editor: dict[str, str]) -> None:
    a = add(client, editor, "a@example.org")
    add(client, editor, "b@example.org")
    r = client.patch(f"/subscribers/{a['id']}", json={"email": "b@example.org"}, headers=editor)
    assert r.status_code == 409
    r = client.patch(f"/subscribers/{a['id']}", json={"status": "pending"}, headers=editor)
    assert r.status_code == 422
    r = client.patch(f"/subscribers/{a['id']}", json={"email": "bad"}, headers=editor)
    assert r.status_code == 422
    assert client.patch("/subscribers/999999", json={}, headers=editor).status_code == 404
    assert client.get("/subscribers/999999", headers=editor).status_code == 404
    assert client.get(f"/subscribers/{a['id']}", headers=editor).json()["email"] == "a@example.org"


def test_delete_erases_and_suppresses(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    sub = add(client, editor, "gone@example.org", name="Gone")
    with session_scope(ctx.sessions) as s:
        issue = Issue(slug="one", subject="One", status=IssueStatus.sent)
        s.add(issue)
        s.flush()
        s.add(Delivery(issue_id=issue.id, subscriber_id=sub["id"], status="sent"))
    r = client.delete(f"/subscribers/{sub['id']}", headers=editor)
    assert r.status_code == 204 and r.content == b""
    assert client.get(f"/subscribers/{sub['id']}", headers=editor).status_code == 404
    assert client.delete(f"/subscribers/{sub['id']}", headers=editor).status_code == 404
    with ctx.sessions() as s:
        assert s.scalars(select(Subscriber)).all() == []
        [supp] = s.scalars(select(Suppression)).all()
        assert (supp.email_hash, supp.reason, supp.source) == (
            hash_secret("gone@example.org"),
            "erased",
            "editor",
        )
        [delivery] = s.scalars(select(Delivery)).all()
        assert delivery.subscriber_id is None  # the record stays, the person is gone
    # Never mailed again: the public form accepts silently, stores nothing.
    assert client.post("/subscribe", json={"email": "gone@example.org"}).status_code == 202
    with ctx.sessions() as s:
        assert s.scalars(select(Subscriber)).all() == []
    r = client.post("/subscribers", json={"email": "gone@example.org"}, headers=editor)
    assert r.status_code == 409


def test_list_filter_search_and_pages(client: TestClient, editor: dict[str, str]) -> None:
    for i in range(7):
        add(client, editor, f"r{i}@example.org", name=f"Reader {i}")
    add(client, editor, "zed@other.example", name="Zed O'Neil", status="pending")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        r = client.get("/subscribers", params=params, headers=editor)
        assert r.status_code == 200
        page = r.json()
        seen += [item["email"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 8

    def emails(**params: Any) -> list[str]:
        r = client.get("/subscribers", params=params, headers=editor)
        assert r.status_code == 200, r.text
        return [i["email"] for i in r.json()["items"]]

    assert emails(status="pending") == ["zed@other.example"]
    assert len(emails(status="active")) == 7
    assert emails(q="OTHER") == ["zed@other.example"]
    assert emails(q="o'neil") == ["zed@other.example"]
    assert emails(q="reader 3") == ["r3@example.org"]
    assert emails(q="%") == []  # wildcards are literal
    assert client.get("/subscribers?limit=201", headers=editor).status_code == 422
    assert client.get("/subscribers?status=nonsense", headers=editor).status_code == 422
    assert client.get("/subscribers?cursor=abc", headers=editor).status_code == 422


def upload(client: TestClient, editor: dict[str, str], data: bytes) -> Any:
    """Upload a CSV to the import endpoint."""
    return client.post(
        "/subscribers/import", files={"file": ("list.csv", data, "text/csv")}, headers=editor
    )


def test_import_through_the_api(client: TestClient, ctx: Context, editor: dict[str, str]) -> None:
    add(client, editor, "known@example.org", name="Known")
    add(client, editor, "left@example.org")
    client.patch("/subscribers/2", json={"status": "unsubscribed"}, headers=editor)
    with session_scope(ctx.sessions) as s:
        s.add(Suppression(email_hash=hash_secret("blocked@example.org"), reason="complaint"))
    csv_bytes = (
        "\ufeffEmail,Name\n"
        "new1@example.org,New One\n"
        '"New2@Example.org","Two, with comma"\n'
        "known@example.org,Known\n"
        "known@example.org,Renamed\n"
        "left@example.org,Left\n"
        "blocked@example.org,Blocked\n"
        "not-an-address,Bad\n"
        'ok@example.org,"line\nbreak"\n'
        "\n"
        "new1@example.org,Again\n"
    ).encode()
    r = upload(client, editor, csv_bytes)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert (summary["imported"], summary["updated"], summary["skipped_existing"]) == (2, 2, 2)
    assert summary["rejected_count"] == 3
    rejected = {(x["row"], x["email"], x["reason"].split(":")[0]) for x in summary["rejected"]}
    assert (7, "blocked@example.org", "suppressed") in rejected
    assert (8, "not-an-address", "That doesn't look like an email address") in rejected
    assert any(row == 9 and "line break" in reason for row, _, reason in rejected)
    with ctx.sessions() as s:
        rows = {r.email: r for r in s.scalars(select(Subscriber))}
    assert rows["new2@example.org"].name == "Two, with comma"
    assert rows["new1@example.org"].name == "Again"
    assert (rows["new1@example.org"].status, rows["new1@example.org"].consent_source) == (
        "active",
        "import",
    )
    assert rows["known@example.org"].name == "Renamed"
    assert rows["left@example.org"].status == "unsubscribed"  # import never resubscribes
    assert "blocked@example.org" not in rows


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"address,name\na@example.org,A\n", "header"),
        (b"email,name\n\xff\xfe broken\n", "UTF-8"),
    ],
)
def test_import_refuses_unreadable_files(
    client: TestClient, editor: dict[str, str], data: bytes, message: str
) -> None:
    r = upload(client, editor, data)
    assert r.status_code == 422
    assert message in r.json()["detail"]


def test_import_streams_in_chunks_and_caps_rejections(ctx: Context) -> None:
    lines = ["email,name"]
    lines += [f"bulk{i}@example.org,Bulk {i}" for i in range(1200)]
    lines += [f"bad{i}" for i in range(REJECTED_LIMIT + 20)]
    data = io.BytesIO("\r\n".join(lines).encode())
    progress: list[int] = []
    commits: list[int] = []
    with session_scope(ctx.sessions) as s:

        def commit() -> None:
            commits.append(1)
            s.commit()

        summary = import_csv(
            s,
            data,
            now=utcnow(),
            chunk_size=500,
            on_chunk=commit,
            on_progress=progress.append,
        )
    assert summary.imported == 1200
    assert summary.rejected_count == REJECTED_LIMIT + 20
    assert len(summary.rejected) == REJECTED_LIMIT
    assert progress == [500, 1000, 1320] and len(commits) == 3
    with ctx.sessions() as s:
        assert len(s.scalars(select(Subscriber.id)).all()) == 1200


def test_import_accepts_a_text_stream_with_a_bom(ctx: Context) -> None:
    with session_scope(ctx.sessions) as s:
        summary = import_csv(s, io.StringIO("\ufeffemail\nt@example.org\n"), now=utcnow())
    assert summary.imported == 1
