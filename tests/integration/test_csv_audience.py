"""CSV import and export carry tags, newsletters and attr.<name> columns (issue 19)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from app.audience.newsletters import leave, set_subscription
from app.context import Context
from app.db import session_scope
from app.models import (
    Subscriber,
    SubscriberTag,
    Subscription,
    SubscriptionStatus,
    utcnow,
)


def _newsletter(client: TestClient, editor: dict[str, str], slug: str) -> int:
    resp = client.post("/newsletters", json={"slug": slug, "name": slug.title()}, headers=editor)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _import(client: TestClient, editor: dict[str, str], text: str) -> dict[str, Any]:
    resp = client.post(
        "/subscribers/import",
        files={"file": ("list.csv", text.encode(), "text/csv")},
        headers=editor,
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _ids(ctx: Context) -> dict[str, int]:
    with session_scope(ctx.sessions) as session:
        return dict(session.execute(select(Subscriber.email, Subscriber.id)).all())


def _reader(client: TestClient, editor: dict[str, str], sid: int) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/subscribers/{sid}", headers=editor).json()
    return body


def test_an_import_carries_tags_newsletters_and_typed_attributes(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _newsletter(client, editor, "alpha")
    text = (
        "email,name,tags,newsletters,attr.plan,attr.seats,attr.beta,attr.ratio,attr.zip\n"
        'ann@example.org,Ann,"vip; Trial",default;alpha,pro,12,true,0.5,007\n'
        "bob@example.org,Bob,,nope,,,,,\n"
        "cy@example.org,Cy,,alpha,=1+2,-3,FALSE,1e3,\n"
        "dee@example.org,Dee,not a tag!,,,,,,\n"
        "eve@example.org,Eve,,,,,,,\n"
    )
    summary = _import(client, editor, text)
    assert summary["imported"] == 3, summary
    rejected = {r["row"]: r for r in summary["rejected"]}
    assert set(rejected) == {3, 5}, summary
    assert rejected[3]["email"] == "bob@example.org" and "nope" in rejected[3]["reason"]
    assert "not a tag" in rejected[5]["reason"]

    ids = _ids(ctx)
    assert "bob@example.org" not in ids and "dee@example.org" not in ids
    ann = _reader(client, editor, ids["ann@example.org"])
    assert ann["tags"] == ["trial", "vip"]
    assert ann["newsletters"] == {"default": "active", "alpha": "active"}
    assert ann["attributes"] == {
        "plan": "pro",
        "seats": 12,
        "beta": True,
        "ratio": 0.5,
        "zip": "007",
    }
    assert type(ann["attributes"]["seats"]) is int
    cy = _reader(client, editor, ids["cy@example.org"])
    assert cy["newsletters"] == {"alpha": "active"}, "exactly the newsletters listed"
    assert cy["tags"] == []
    assert cy["attributes"] == {"plan": "=1+2", "seats": -3, "beta": False, "ratio": 1000.0}
    eve = _reader(client, editor, ids["eve@example.org"])
    assert eve["newsletters"] == {"default": "active"} and eve["attributes"] == {}


def test_attribute_bounds_are_those_of_the_api_and_a_bad_header_names_itself(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    many = ",".join(f"attr.a{i}" for i in range(51))
    ones = ",".join("1" for _ in range(51))
    fifty = ",".join("1" for _ in range(50)) + ","
    big = "x" * 1025
    text = (
        f"email,{many}\n"
        f"too.many@example.org,{ones}\n"
        f"fifty@example.org,{fifty}\n"
        f"big@example.org,{big}{',' * 50}\n"
    )
    summary = _import(client, editor, text)
    rejected = {r["row"]: r["reason"] for r in summary["rejected"]}
    assert set(rejected) == {2, 4}, summary
    assert "50" in rejected[2] and "1024 bytes" in rejected[4]
    ids = _ids(ctx)
    assert len(_reader(client, editor, ids["fifty@example.org"])["attributes"]) == 50

    bad = client.post(
        "/subscribers/import",
        files={"file": ("l.csv", b"email,attr.9lives\na@example.org,1\n", "text/csv")},
        headers=editor,
    )
    assert bad.status_code == 422 and "attr.9lives" in bad.text


def test_an_import_adds_to_an_existing_reader_and_never_rejoins_a_newsletter_they_left(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    alpha = _newsletter(client, editor, "alpha")
    _newsletter(client, editor, "bravo")
    sid = client.post(
        "/subscribers",
        json={"email": "old@example.org", "name": "Old", "status": "active"},
        headers=editor,
    ).json()["id"]
    assert client.post(f"/subscribers/{sid}/tags", json={"tags": ["x"]}, headers=editor).is_success
    patched = client.patch(f"/subscribers/{sid}", json={"attributes": {"k": 1}}, headers=editor)
    assert patched.status_code == 200, patched.text
    left = client.post(
        "/subscribers",
        json={"email": "left@example.org", "name": "Left", "status": "active"},
        headers=editor,
    ).json()["id"]
    with session_scope(ctx.sessions) as session:
        set_subscription(session, left, alpha, SubscriptionStatus.active, utcnow())
        leave(session, left, alpha, utcnow())

    text = (
        "email,tags,newsletters,attr.plan\n"
        "old@example.org,y,bravo,pro\n"
        "left@example.org,,alpha;bravo,\n"
    )
    summary = _import(client, editor, text)
    assert summary["updated"] == 2 and summary["rejected_count"] == 0, summary

    old = _reader(client, editor, sid)
    assert old["tags"] == ["x", "y"], "tags are added, none removed"
    assert old["attributes"] == {"k": 1, "plan": "pro"}
    # They took the default newsletter implicitly: joining bravo keeps it.
    assert old["newsletters"] == {"default": "active", "bravo": "active"}
    gone = _reader(client, editor, left)
    assert gone["newsletters"]["alpha"] == "unsubscribed", "an import never resubscribes"
    assert gone["newsletters"]["bravo"] == "active"


def test_an_export_imports_again_with_the_same_tags_newsletters_and_attributes(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    alpha = _newsletter(client, editor, "alpha")
    _newsletter(client, editor, "bravo")
    attrs: dict[str, dict[str, Any]] = {
        "ann@example.org": {
            "plan": "pro",
            "seats": 12,
            "beta": True,
            "ratio": 0.25,
            "formula": '=HYPERLINK("http://example.org")',
            "neg": -3,
            "note": 'semi; colon, comma "quoted"\nsecond line',
        },
        "bob@example.org": {"plan": "free", "big": 2**53, "tiny": 1.5e-7},
        "cy@example.org": {},
    }
    ids: dict[str, int] = {}
    for email, values in attrs.items():
        body = {"email": email, "name": f"@{email}", "status": "active"}
        ids[email] = client.post("/subscribers", json=body, headers=editor).json()["id"]
        if values:
            resp = client.patch(
                f"/subscribers/{ids[email]}", json={"attributes": values}, headers=editor
            )
            assert resp.status_code == 200, resp.text
    client.post(
        f"/subscribers/{ids['ann@example.org']}/tags",
        json={"tags": ["vip", "trial"]},
        headers=editor,
    )
    client.post(
        f"/subscribers/{ids['bob@example.org']}/tags", json={"tags": ["vip"]}, headers=editor
    )
    with session_scope(ctx.sessions) as session:
        now = utcnow()
        set_subscription(session, ids["ann@example.org"], alpha, SubscriptionStatus.active, now)
        set_subscription(session, ids["bob@example.org"], alpha, SubscriptionStatus.active, now)
        leave(session, ids["bob@example.org"], 1, now)  # bob reads alpha only

    def picture() -> dict[str, tuple[list[str], set[str], dict[str, Any], str]]:
        found = {}
        for email, sid in _ids(ctx).items():
            r = _reader(client, editor, sid)
            active = {slug for slug, status in r["newsletters"].items() if status == "active"}
            found[email] = (r["tags"], active, r["attributes"], r["name"])
        return found

    before = picture()
    assert before["bob@example.org"][1] == {"alpha"}
    exported = client.get("/subscribers/export.csv", headers=editor)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    text = exported.text
    header = text.splitlines()[0]
    assert header.startswith("email,name,status,timezone,created_at,confirmed_at,tags,newsletters")
    assert "attr.formula" in header and "attr.seats" in header
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text, "no formula runs in a sheet"
    assert client.get("/subscribers/export.csv").status_code == 401

    # A fresh install: no readers, the same newsletters.
    with session_scope(ctx.sessions) as session:
        session.execute(delete(SubscriberTag))
        session.execute(delete(Subscription))
        session.execute(delete(Subscriber))
    assert _ids(ctx) == {}

    summary = _import(client, editor, text)
    assert summary["imported"] == 3 and summary["rejected_count"] == 0, summary
    after = picture()
    assert after == before
    assert type(after["bob@example.org"][2]["big"]) is int


def test_an_import_keeps_readers_who_left_as_having_left(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    """An export re-imported elsewhere never mails those who left; a bad status is refused."""
    already = client.post(
        "/subscribers", json={"email": "old@example.org", "status": "active"}, headers=editor
    )
    assert already.status_code == 201, already.text
    summary = _import(
        client,
        editor,
        "email,name,status\n"
        "new@example.org,New,active\n"
        "gone@example.org,Gone,unsubscribed\n"
        "hard@example.org,Hard,bounced\n"
        "old@example.org,Old,unsubscribed\n"
        "odd@example.org,Odd,maybe\n",
    )
    assert summary["imported"] == 1 and summary["left"] == 3
    assert [r["row"] for r in summary["rejected"]] == [6]
    assert "status 'maybe'" in summary["rejected"][0]["reason"]
    with session_scope(ctx.sessions) as session:
        status = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
    assert status == {
        "new@example.org": "active",
        "gone@example.org": "unsubscribed",
        "hard@example.org": "bounced",
        "old@example.org": "unsubscribed",
    }
