"""Tags and attributes on readers: one at a time, in bulk, bounded, shown on the reader."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.audience.newsletters import by_slug, leave, set_subscription
from app.context import Context
from app.db import session_scope
from app.models import DEFAULT_NEWSLETTER_ID, SubscriptionStatus, utcnow
from tests.helpers import add_subscribers


def test_tags_are_added_listed_and_removed_one_reader_at_a_time(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    (sid,) = add_subscribers(ctx, 1)
    resp = client.post(
        f"/subscribers/{sid}/tags", json={"tags": ["VIP", "ai-news", "vip"]}, headers=editor
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"tags": ["ai-news", "vip"]}
    again = client.post(f"/subscribers/{sid}/tags", json={"tags": ["vip"]}, headers=editor)
    assert again.json() == {"tags": ["ai-news", "vip"]}
    assert client.get(f"/subscribers/{sid}", headers=editor).json()["tags"] == ["ai-news", "vip"]
    gone = client.delete(f"/subscribers/{sid}/tags/VIP", headers=editor)
    assert gone.json() == {"tags": ["ai-news"]}
    assert client.delete(f"/subscribers/{sid}/tags/vip", headers=editor).status_code == 200


def test_bad_tags_and_unknown_readers_are_clear_errors(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    (sid,) = add_subscribers(ctx, 1)
    for bad in ["", "two words", "x" * 65, "<b>", "-lead"]:
        resp = client.post(f"/subscribers/{sid}/tags", json={"tags": [bad]}, headers=editor)
        assert resp.status_code == 422, bad
    assert (
        client.post("/subscribers/99999/tags", json={"tags": ["a"]}, headers=editor).status_code
        == 404
    )
    assert client.post(f"/subscribers/{sid}/tags", json={"tags": ["a"]}).status_code == 401


def test_bulk_tags_by_ids_filter_and_segment(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    ids = add_subscribers(ctx, 6)
    resp = client.post("/subscribers/tags", json={"add": ["trial"], "ids": ids[:4]}, headers=editor)
    assert resp.json() == {"matched": 4, "added": 4, "removed": 0}
    resp = client.post(
        "/subscribers/tags",
        json={"add": ["vip"], "remove": ["trial"], "filter": "tag:trial"},
        headers=editor,
    )
    assert resp.json() == {"matched": 4, "added": 4, "removed": 4}
    seg = client.post(
        "/segments", json={"name": "VIPs", "filter": "tag:vip"}, headers=editor
    ).json()
    resp = client.post(
        "/subscribers/tags", json={"add": ["gold"], "segment": seg["id"]}, headers=editor
    )
    assert resp.json() == {"matched": 4, "added": 4, "removed": 0}
    tags = [client.get(f"/subscribers/{i}", headers=editor).json()["tags"] for i in ids]
    assert tags == [["gold", "vip"]] * 4 + [[], []]
    for body in (
        {"add": ["x"]},  # no target
        {"add": ["x"], "ids": [1], "filter": "tag:a"},  # two targets
        {"ids": [1]},  # nothing to do
        {"add": ["x"], "remove": ["x"], "ids": [1]},
        {"add": ["x"], "filter": "tag:"},  # a broken filter
    ):
        assert client.post("/subscribers/tags", json=body, headers=editor).status_code == 422, body


def test_bulk_tags_by_a_newsletters_segment_tag_only_that_newsletters_readers(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    for slug in ("alpha", "beta"):
        made = client.post(
            "/newsletters", json={"slug": slug, "name": slug.upper()}, headers=editor
        )
        assert made.status_code == 201, made.text
    ids = add_subscribers(ctx, 4)
    # Readers 0 and 1 take alpha; 2 and 3 take beta. Everyone is tagged "vip".
    for sid, slug in zip(ids, ("alpha", "alpha", "beta", "beta"), strict=True):
        with session_scope(ctx.sessions) as session:
            set_subscription(
                session, sid, by_slug(session, slug).id, SubscriptionStatus.active, utcnow()
            )
            leave(session, sid, DEFAULT_NEWSLETTER_ID, utcnow())
    client.post("/subscribers/tags", json={"add": ["vip"], "ids": ids}, headers=editor)
    seg = client.post(
        "/segments",
        json={"name": "Alpha VIPs", "newsletter": "alpha", "filter": "tag:vip"},
        headers=editor,
    ).json()
    assert client.get(f"/segments/{seg['id']}/count", headers=editor).json() == {"count": 2}
    resp = client.post(
        "/subscribers/tags", json={"add": ["gold"], "segment": seg["id"]}, headers=editor
    )
    assert resp.json() == {"matched": 2, "added": 2, "removed": 0}
    tags = [client.get(f"/subscribers/{i}", headers=editor).json()["tags"] for i in ids]
    assert tags == [["gold", "vip"]] * 2 + [["vip"]] * 2


def test_attributes_merge_bounded_and_typed(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    (sid,) = add_subscribers(ctx, 1)
    patch = {"attributes": {"plan": "pro", "seats": 12, "beta": True, "score": 4.5}}
    resp = client.patch(f"/subscribers/{sid}", json=patch, headers=editor)
    assert resp.status_code == 200, resp.text
    assert resp.json()["attributes"] == patch["attributes"]
    resp = client.patch(
        f"/subscribers/{sid}",
        json={"attributes": {"beta": None, "company": "ACME"}},
        headers=editor,
    )
    assert resp.json()["attributes"] == {
        "plan": "pro",
        "seats": 12,
        "score": 4.5,
        "company": "ACME",
    }
    bad_values = [
        {"x": {"nested": 1}},
        {"x": [1, 2]},
        {"x": "é" * 600},  # over 1 KB in UTF-8
        {"1st": "a"},
        {"has space": "a"},
        {f"k{i}": i for i in range(51)},
        {"big": 2**60},
    ]
    for attributes in bad_values:
        resp = client.patch(f"/subscribers/{sid}", json={"attributes": attributes}, headers=editor)
        assert resp.status_code == 422, attributes
    assert client.get(f"/subscribers/{sid}", headers=editor).json()["attributes"]["plan"] == "pro"


def test_erasing_a_reader_removes_their_tags(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    a, b = add_subscribers(ctx, 2)
    for sid in (a, b):
        client.post(f"/subscribers/{sid}/tags", json={"tags": ["vip"]}, headers=editor)
    assert client.delete(f"/subscribers/{a}", headers=editor).status_code == 204
    resp = client.post(
        "/subscribers/tags", json={"add": ["x"], "filter": "tag:vip"}, headers=editor
    )
    assert resp.json()["matched"] == 1
