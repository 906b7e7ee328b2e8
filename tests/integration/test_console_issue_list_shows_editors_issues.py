"""The console's issue list shows the editors' issues, not an automation's hidden carriers."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import Issue
from tests.console_support import add_account, sign_in
from tests.sequence_support import drafts


def test_a_sequences_carrier_issues_stay_out_of_the_console_list(
    ctx: Context, client: TestClient
) -> None:
    add_account(ctx)
    csrf = sign_in(client)
    ids = drafts(ctx, "Welcome aboard")
    form = {
        "csrf_token": csrf,
        "name": "Welcome series",
        "trigger": "confirmed",
        "issue0": str(ids[0]),
        "after0": "PT0S",
        "issue1": "",
    }
    assert client.post("/editor/sequences", data=form).status_code == 200
    with session_scope(ctx.sessions) as session:
        carriers = session.scalars(select(Issue).where(Issue.automation.is_not(None))).all()
        assert len(carriers) == 1  # the step's carrier: a copy of the draft, kept sending
        carrier_id, carrier_slug = carriers[0].id, carriers[0].slug
    for url in ("/editor/issues", "/editor/issues?q=welcome", "/editor/issues?status=sending"):
        page = client.get(url)
        assert page.status_code == 200
        listed = {int(n) for n in re.findall(r'href="/editor/issues/(\d+)"', page.text)}
        assert carrier_id not in listed, url
        assert carrier_slug not in page.text, url
    # The editor's own draft is still listed and found.
    assert f'href="/editor/issues/{ids[0]}"' in client.get("/editor/issues?q=welcome").text
