"""Subscribers in bulk: tag the ticked readers after a confirmation (issue 22, item 9)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.audience.tags import tags_of
from app.context import Context
from app.db import session_scope
from tests.console_support import add_account, sign_in
from tests.helpers import add_subscribers


def test_the_ticked_subscribers_are_tagged_after_a_confirmation(
    client: TestClient, ctx: Context
) -> None:
    add_account(ctx)
    csrf = sign_in(client)
    ids = add_subscribers(ctx, 4)
    page = client.get("/editor/subscribers").text
    assert '<option value="tag">' in page and 'name="tag"' in page
    chosen = [str(i) for i in ids[:3]]
    ask = client.post(
        "/editor/subscribers/bulk",
        data={"csrf_token": csrf, "action": "tag", "tag": " VIP ", "ids": chosen},
    )
    assert ask.status_code == 200 and "Tag 3 subscribers" in ask.text and "vip" in ask.text
    with session_scope(ctx.sessions) as session:
        assert tags_of(session, ids[0]) == []  # asked only
    bad = client.post(
        "/editor/subscribers/bulk",
        data={"csrf_token": csrf, "action": "tag", "tag": "not a tag!", "ids": chosen},
    )
    assert bad.status_code == 422 and "is not a tag" in bad.text
    forged = client.post(
        "/editor/subscribers/bulk/apply", data={"action": "tag", "tag": "vip", "ids": chosen}
    )
    assert forged.status_code == 403
    done = client.post(
        "/editor/subscribers/bulk/apply",
        data={"csrf_token": csrf, "action": "tag", "tag": "vip", "ids": chosen},
    )
    assert done.status_code == 200 and "are tagged" in done.text
    with session_scope(ctx.sessions) as session:
        assert [tags_of(session, i) for i in ids] == [["vip"], ["vip"], ["vip"], []]
