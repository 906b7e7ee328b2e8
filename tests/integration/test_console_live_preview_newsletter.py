"""The editor's live preview wears the masthead of the newsletter the text is written for."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.context import Context
from tests.console_support import add_account, sign_in
from tests.helpers import new_issue

TEXT = """---
subject: Robots at dawn
---
## The lead {lead}
Machines wake early.
"""


def test_the_live_preview_names_the_issues_own_newsletter(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    made = client.post(
        "/newsletters", json={"slug": "robots", "name": "Robots Weekly"}, headers=editor
    )
    assert made.status_code == 201, made.text
    issue = new_issue(client, editor, newsletter="robots")
    add_account(ctx)
    csrf = sign_in(client)
    form = {"csrf_token": csrf, "markdown": TEXT}

    edit = client.get(f"/editor/issues/{issue['id']}/edit")
    assert f'formaction="/editor/issues/preview-markdown?issue={issue["id"]}"' in edit.text
    editing = client.post(f"/editor/issues/preview-markdown?issue={issue['id']}", data=form)
    assert editing.status_code == 200 and "Machines" in editing.text
    assert "Robots Weekly" in editing.text

    chosen = client.post("/editor/issues/preview-markdown", data={**form, "newsletter": "robots"})
    assert "Robots Weekly" in chosen.text

    default = client.post("/editor/issues/preview-markdown", data=form)
    assert "Machines" in default.text and "Robots Weekly" not in default.text
    assert ctx.settings.newsletter_name in " ".join(default.text.split())

    unknown = client.post("/editor/issues/preview-markdown", data={**form, "newsletter": "nope"})
    assert "There is no newsletter" in unknown.text
