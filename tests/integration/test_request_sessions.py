"""A route's database session: committed when the handler returns, rolled back when it raises,
and back in the pool either way (it is opened on the event loop and settled on a thread)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.context import Context
from app.db import session_scope
from app.models import Subscriber
from tests.helpers import new_issue


def _subscribers(ctx: Context) -> int:
    with session_scope(ctx.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(Subscriber)) or 0)


def test_sessions_commit_roll_back_and_go_back_to_the_pool(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    pool = ctx.engine.pool
    # A write that succeeds is committed before the answer leaves.
    made = client.post("/subscribers", json={"email": "kept@example.org"}, headers=editor)
    assert made.status_code == 201, made.text
    assert _subscribers(ctx) == 1
    # A write refused by the service (a duplicate) leaves nothing behind.
    again = client.post("/subscribers", json={"email": "kept@example.org"}, headers=editor)
    assert again.status_code == 409, again.text
    # An import that keeps its good row and names the bad one.
    csv = "email,name\nfirst@example.org,A\nnot-an-address,B\n"
    imported = client.post(
        "/subscribers/import",
        files={"file": ("readers.csv", csv, "text/csv")},
        headers=editor,
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["imported"] == 1 and imported.json()["rejected_count"] == 1
    # Reads, a 404 and a page that needs a signed token.
    assert client.get("/subscribers", headers=editor).status_code == 200
    assert client.get("/issues/999999", headers=editor).status_code == 404
    assert client.get("/unsubscribe/forged").status_code == 400
    new_issue(client, editor)
    # Every session was settled: nothing is left checked out of the pool.
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert _subscribers(ctx) == 2


def test_a_handler_error_rolls_back_what_it_wrote(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    before = _subscribers(ctx)
    # A CSV whose bad byte comes after good rows: the whole import is refused (422) and none of
    # the rows it had already added survive.
    csv = "email,name\n" + "".join(f"r{i}@example.org,R\n" for i in range(5)) + "x@\x00.org,Z\n"
    r = client.post(
        "/subscribers/import",
        files={"file": ("readers.csv", csv.encode(), "text/csv")},
        headers=editor,
    )
    assert r.status_code == 422, r.text
    assert _subscribers(ctx) == before
    assert ctx.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
