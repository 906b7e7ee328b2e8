"""The console's A/B form on the send page and the variants on the results page; screenshots
at both widths in both schemes (headless Chromium)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.context import Context
from app.db import session_scope
from app.models import AbTest
from tests.console_support import add_account, sign_in
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer


def test_the_send_page_starts_a_subject_test_and_results_decide_it(
    ctx: Context, client: TestClient, editor: dict[str, str], smtp_server: SMTPTestServer
) -> None:
    add_subscribers(ctx, 10)
    issue = new_issue(client, editor, preheader="Small models, big gains")
    add_account(ctx)
    csrf = sign_in(client)
    page = client.get(f"/editor/issues/{issue['id']}/send")
    assert "Or test subjects first" in page.text and 'data-ab-preview="1"' in page.text
    form = {
        "csrf_token": csrf,
        "subject0": "The AI Morning Post",
        "subject1": "Small models <b>win</b>",
        "sample_percent": "40",
        "decide_after": "PT2H",
    }
    assert (
        client.post(
            f"/editor/issues/{issue['id']}/send-ab", data={**form, "csrf_token": ""}
        ).status_code
        == 403
    )
    bad = client.post(f"/editor/issues/{issue['id']}/send-ab", data={**form, "subject1": ""})
    assert bad.status_code == 422 and "2 to 4 subjects" in bad.text
    results = client.post(f"/editor/issues/{issue['id']}/send-ab", data=form)
    assert results.status_code == 200 and "Subject test" in results.text
    assert "Small models &lt;b&gt;win&lt;/b&gt;" in results.text  # escaped
    run_worker(ctx)
    decided = client.post(
        f"/editor/issues/{issue['id']}/ab/decide",
        data={"csrf_token": csrf, "subject": "Small models <b>win</b>"},
    )
    assert decided.status_code == 200 and "winner" in decided.text
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(AbTest.winner)) == 1
