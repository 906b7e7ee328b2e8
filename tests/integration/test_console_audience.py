"""The console's audience pages: newsletters and their settings, the switcher, a reader's tags
and attributes, the segment builder, and a send to a segment that reaches exactly its readers."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.audience.newsletters import set_subscription
from app.audience.tags import tags_of
from app.context import Context
from app.db import session_scope
from app.models import (
    DEFAULT_NEWSLETTER_ID,
    Delivery,
    Issue,
    Newsletter,
    Segment,
    Subscriber,
    SubscriptionStatus,
    utcnow,
)
from tests.audience_support import FILTER, matching, population
from tests.console_support import add_account, sign_in
from tests.helpers import SIMPLE_BLOCKS, add_subscribers, new_issue

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _signed_in(ctx: Context, client: TestClient) -> str:
    add_account(ctx)
    return sign_in(client)


def _newsletter(ctx: Context, newsletter_id: int) -> dict[str, Any]:
    with session_scope(ctx.sessions) as session:
        row = session.get(Newsletter, newsletter_id)
        assert row is not None
        return {c: getattr(row, c) for c in ("slug", "name", "from_address", "reply_to", "tagline")}


# Newsletters and their settings ---------------------------------------------------------------


def test_newsletter_settings_are_edited_with_csrf_and_the_api_s_checks(
    ctx: Context, client: TestClient
) -> None:
    csrf = _signed_in(ctx, client)
    page = client.get(f"/editor/newsletters/{DEFAULT_NEWSLETTER_ID}")
    assert page.status_code == 200
    # An empty field shows the environment's value as its placeholder.
    assert 'placeholder="The AI Morning Post &lt;news@morningpost.test&gt;"' in page.text
    before = _newsletter(ctx, DEFAULT_NEWSLETTER_ID)
    form = {
        "name": f"Morning {SCRIPT}",
        "tagline": "Daily, briefly",
        "from_address": "Desk <desk@morningpost.test>",
        "reply_to": "",
        "postal_address": "1 Main St, Springfield",
        "list_id": "",
    }

    forged = client.post(f"/editor/newsletters/{DEFAULT_NEWSLETTER_ID}", data=form)
    assert forged.status_code == 403
    assert _newsletter(ctx, DEFAULT_NEWSLETTER_ID) == before

    bad = client.post(
        f"/editor/newsletters/{DEFAULT_NEWSLETTER_ID}",
        data={**form, "csrf_token": csrf, "reply_to": "not an address", "from_address": "x@y"},
    )
    assert bad.status_code == 422
    # Each refusal in one sentence next to its own field, in the form's words.
    assert '<p class="field-error" id="reply_to-error">Reply-to must be an address' in bad.text
    assert '<p class="field-error" id="from_address-error">From must be an address' in bad.text
    assert 'value="not an address"' in bad.text  # the typed text stays in the form
    assert _newsletter(ctx, DEFAULT_NEWSLETTER_ID) == before

    saved = client.post(
        f"/editor/newsletters/{DEFAULT_NEWSLETTER_ID}", data={**form, "csrf_token": csrf}
    )
    assert saved.status_code == 200 and "settings are saved" in saved.text
    assert ESCAPED in saved.text and SCRIPT not in saved.text
    assert 'value="Desk &lt;desk@morningpost.test&gt;"' in saved.text
    stored = _newsletter(ctx, DEFAULT_NEWSLETTER_ID)
    assert stored["name"] == f"Morning {SCRIPT}"
    assert stored["from_address"] == "Desk <desk@morningpost.test>"
    assert stored["reply_to"] is None  # empty: back to the environment
    # The API reads what the console stored.
    listed = client.get("/editor/newsletters")
    assert ESCAPED in listed.text and SCRIPT not in listed.text


def test_a_newsletter_is_created_from_a_slug_and_a_name(ctx: Context, client: TestClient) -> None:
    csrf = _signed_in(ctx, client)

    def count() -> int:
        with session_scope(ctx.sessions) as session:
            return int(session.scalar(select(func.count()).select_from(Newsletter)) or 0)

    assert client.post("/editor/newsletters", data={"slug": "b", "name": "B"}).status_code == 403
    assert count() == 1
    bad = client.post(
        "/editor/newsletters", data={"csrf_token": csrf, "slug": "Bad Slug", "name": "B"}
    )
    assert bad.status_code == 422 and 'id="slug-error">Slug must be 1 to 80' in bad.text
    assert count() == 1
    made = client.post(
        "/editor/newsletters",
        data={"csrf_token": csrf, "slug": "weekend", "name": f"Weekend {SCRIPT}"},
    )
    assert made.status_code == 200 and "The newsletter is added" in made.text
    assert ESCAPED in made.text and SCRIPT not in made.text
    again = client.post(
        "/editor/newsletters", data={"csrf_token": csrf, "slug": "weekend", "name": "Again"}
    )
    assert again.status_code == 422 and "exists already" in again.text
    assert count() == 2


def test_the_switcher_scopes_issues_new_issues_dashboard_and_segments(
    ctx: Context, client: TestClient, editor: dict[str, str]
) -> None:
    csrf = _signed_in(ctx, client)
    client.post("/newsletters", json={"slug": "weekend", "name": "Weekend"}, headers=editor)
    mine = new_issue(client, editor, subject="Weekday one")
    theirs = new_issue(client, editor, subject="Weekend one", newsletter="weekend")

    everything = client.get("/editor/issues")
    assert "Weekday one" in everything.text and "Weekend one" in everything.text
    assert 'name="newsletter"' in everything.text  # the switcher is shown: two newsletters

    scoped = client.get("/editor/issues?newsletter=weekend")
    assert "Weekend one" in scoped.text and "Weekday one" not in scoped.text
    # The nav keeps the choice from page to page.
    assert 'href="/editor/?newsletter=weekend"' in scoped.text
    assert 'href="/editor/segments?newsletter=weekend"' in scoped.text
    assert 'href="/editor/issues/new?newsletter=weekend"' in scoped.text
    dash = client.get("/editor/?newsletter=weekend")
    assert "of Weekend would get an issue" in dash.text

    form = client.get("/editor/issues/new?newsletter=weekend")
    assert '<option value="weekend" selected>' in form.text
    markdown = "---\nsubject: Saturday papers\n---\n## Lead {lead}\nHello.\n"
    made = client.post(
        "/editor/issues", data={"csrf_token": csrf, "markdown": markdown, "newsletter": "weekend"}
    )
    assert made.status_code == 200
    with session_scope(ctx.sessions) as session:
        new_one = session.scalar(select(Issue).where(Issue.subject == "Saturday papers"))
        assert new_one is not None
        weekend_id = session.scalar(select(Newsletter.id).where(Newsletter.slug == "weekend"))
        assert new_one.newsletter_id == weekend_id
        assert session.get(Issue, mine["id"]).newsletter_id == DEFAULT_NEWSLETTER_ID  # type: ignore[union-attr]
        assert session.get(Issue, theirs["id"]).newsletter_id == weekend_id  # type: ignore[union-attr]


def test_the_settings_page_shows_the_bounce_domain_only_when_set(
    ctx: Context, client: TestClient
) -> None:
    _signed_in(ctx, client)
    page = client.get("/editor/settings")
    assert page.status_code == 200
    assert "Bounce domain" not in page.text
    assert f'href="/editor/newsletters/{DEFAULT_NEWSLETTER_ID}"' in page.text
    ctx.settings.bounce_domain = "bounces.morningpost.test"
    page = client.get("/editor/settings")
    assert "<dt>Bounce domain</dt><dd>bounces.morningpost.test</dd>" in page.text


# A reader's tags, attributes and newsletters --------------------------------------------------


def _reader(ctx: Context, sid: int) -> tuple[list[str], dict[str, Any]]:
    with session_scope(ctx.sessions) as session:
        row = session.get(Subscriber, sid)
        assert row is not None
        return tags_of(session, sid), dict(row.attributes or {})


def test_tags_and_attributes_on_a_reader_s_page(ctx: Context, client: TestClient) -> None:
    csrf = _signed_in(ctx, client)
    (sid,) = add_subscribers(ctx, 1)
    base = f"/editor/subscribers/{sid}"

    assert client.post(f"{base}/tags", data={"tags": "vip"}).status_code == 403
    assert client.post(f"{base}/attributes", data={"name": "a", "value": "1"}).status_code == 403
    assert _reader(ctx, sid) == ([], {})

    page = client.post(f"{base}/tags", data={"csrf_token": csrf, "tags": "VIP, trial  early-bird"})
    assert page.status_code == 200 and "The tags are saved" in page.text
    assert _reader(ctx, sid)[0] == ["early-bird", "trial", "vip"]
    assert 'aria-label="Remove the tag trial"' in page.text
    client.post(f"{base}/tags/remove", data={"csrf_token": csrf, "tag": "trial"})
    assert _reader(ctx, sid)[0] == ["early-bird", "vip"]
    bad_tag = client.post(f"{base}/tags", data={"csrf_token": csrf, "tags": SCRIPT})
    assert bad_tag.status_code == 422 and "is not a tag" in bad_tag.text
    assert SCRIPT not in bad_tag.text

    for name, kind, value in (
        ("company", "string", f"ACME {SCRIPT}"),
        ("seats", "number", "12"),
        ("ratio", "number", "0.5"),
        ("paid", "boolean", "true"),
    ):
        done = client.post(
            f"{base}/attributes",
            data={"csrf_token": csrf, "name": name, "type": kind, "value": value},
        )
        assert done.status_code == 200, done.text
    attrs = _reader(ctx, sid)[1]
    assert attrs == {"company": f"ACME {SCRIPT}", "seats": 12, "ratio": 0.5, "paid": True}
    shown = client.get(base).text
    assert f"ACME {ESCAPED}" in shown and SCRIPT not in shown
    assert "<code>attr.seats</code>" in shown

    refusals = {
        ("seats", "number", "twelve"): "is not a number",
        ("paid", "boolean", "yes"): "a boolean is true or false",
        ("big", "number", str(2**60)): "the number is too large",
        ("long", "string", "x" * 1025): "at most 1024 bytes",
        ("9lives", "string", "x"): "is not an attribute name",
        ("inf", "number", "inf"): "a number must be finite",
    }
    for (name, kind, value), message in refusals.items():
        refused = client.post(
            f"{base}/attributes",
            data={"csrf_token": csrf, "name": name, "type": kind, "value": value},
        )
        assert refused.status_code == 422 and message in refused.text, (name, refused.text[:300])
    assert _reader(ctx, sid)[1] == attrs  # nothing changed

    for i in range(46):
        client.post(
            f"{base}/attributes",
            data={"csrf_token": csrf, "name": f"k{i}", "type": "string", "value": "v"},
        )
    full = client.post(
        f"{base}/attributes",
        data={"csrf_token": csrf, "name": "one_too_many", "type": "string", "value": "v"},
    )
    assert full.status_code == 422 and "at most 50 attributes" in full.text
    client.post(f"{base}/attributes/remove", data={"csrf_token": csrf, "name": "seats"})
    assert "seats" not in _reader(ctx, sid)[1]


def test_a_reader_s_page_lists_the_newsletters_they_take(
    ctx: Context, client: TestClient, editor: dict[str, str]
) -> None:
    _signed_in(ctx, client)
    weekend = client.post(
        "/newsletters", json={"slug": "weekend", "name": "Weekend"}, headers=editor
    )
    (sid,) = add_subscribers(ctx, 1)
    with session_scope(ctx.sessions) as session:
        set_subscription(session, sid, weekend.json()["id"], SubscriptionStatus.active, utcnow())
    page = client.get(f"/editor/subscribers/{sid}").text
    section = page[page.index('id="newsletters"') :]
    assert re.search(r"<span>Weekend</span> <span class=\"small\">takes it", section)
    assert re.search(r"<span>The AI Morning Post</span> <span class=\"small\">takes it", section)


# Segments: the builder, the saved list, and a send to one -------------------------------------


def _population(ctx: Context, newsletter_id: int) -> dict[int, dict[str, Any]]:
    return population(ctx, newsletter_id, count=48, seed=22, prefix="p", record_leaving=True)


def test_the_segment_builder_previews_saves_and_lists_with_counts(
    ctx: Context, client: TestClient
) -> None:
    csrf = _signed_in(ctx, client)
    known = _population(ctx, DEFAULT_NEWSLETTER_ID)
    expected = matching(known)
    slug = _newsletter(ctx, DEFAULT_NEWSLETTER_ID)["slug"]

    preview = client.get(
        "/editor/segments/preview.json", params={"filter": FILTER, "newsletter": slug}
    )
    body = preview.json()
    assert body["count"] == len(expected)
    first_ten = sorted(expected)[:10]
    assert body["sample"] == [known[sid]["email"] for sid in first_ten]

    broken = client.get(
        "/editor/segments/preview.json", params={"filter": "tag:vip and (", "newsletter": slug}
    )
    assert broken.json()["position"] == 14 and "position 14" in broken.json()["error"]
    injected = client.get(
        "/editor/segments/preview.json", params={"filter": "tag:x' OR 1=1 --", "newsletter": slug}
    )
    assert "error" in injected.json()

    page = client.get("/editor/segments")
    assert page.status_code == 200 and "data-segment-builder" in page.text
    form = {"name": f"Paying {SCRIPT}", "filter": FILTER, "newsletter": slug}
    assert client.post("/editor/segments", data=form).status_code == 403
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == 0
    bad = client.post("/editor/segments", data={**form, "csrf_token": csrf, "filter": "tag:"})
    assert bad.status_code == 422 and "position 5" in bad.text
    saved = client.post("/editor/segments", data={**form, "csrf_token": csrf})
    assert saved.status_code == 200 and "The segment is saved" in saved.text
    assert ESCAPED in saved.text and SCRIPT not in saved.text
    counted = re.search(r'data-segment-count="\d+">([\d,]+)<', saved.text)
    assert counted and int(counted.group(1).replace(",", "")) == len(expected)


def _send_via_console(
    ctx: Context, client: TestClient, csrf: str, issue_id: int, choice: dict[str, str]
) -> int:
    """Open the confirmation, check it names the audience, send; return the count it showed."""
    confirm = client.get(f"/editor/issues/{issue_id}/send", params=choice)
    assert confirm.status_code == 200, confirm.text
    shown = re.search(r"<strong data-recipients>([\d,]+)</strong>", confirm.text)
    assert shown
    count = int(shown.group(1).replace(",", ""))
    post = {"csrf_token": csrf, **choice}
    assert (
        client.post(f"/editor/issues/{issue_id}/send", data={**post, "csrf_token": ""}).status_code
        == 403
    )
    assert _frozen(ctx, issue_id) == set()
    sent = client.post(f"/editor/issues/{issue_id}/send", data=post)
    assert sent.status_code == 200 and sent.url.path.endswith("/results"), sent.text[:300]
    return count


def _frozen(ctx: Context, issue_id: int) -> set[int]:
    with session_scope(ctx.sessions) as session:
        return set(
            session.scalars(select(Delivery.subscriber_id).where(Delivery.issue_id == issue_id))
        )


def test_a_send_to_a_saved_segment_from_the_console_reaches_exactly_its_readers(
    ctx: Context, client: TestClient, editor: dict[str, str]
) -> None:
    csrf = _signed_in(ctx, client)
    known = _population(ctx, DEFAULT_NEWSLETTER_ID)
    expected = matching(known)
    assert 0 < len(expected) < len(known)
    slug = _newsletter(ctx, DEFAULT_NEWSLETTER_ID)["slug"]
    client.post(
        "/editor/segments",
        data={"csrf_token": csrf, "name": "Paying VIPs", "filter": FILTER, "newsletter": slug},
    )
    with session_scope(ctx.sessions) as session:
        segment_id = session.scalar(select(Segment.id))
    issue = new_issue(client, editor)
    page = client.get(f"/editor/issues/{issue['id']}")
    assert f'<option value="{segment_id}">Paying VIPs</option>' in page.text

    choice = {"audience": "segment", "segment": str(segment_id)}
    confirm = client.get(f"/editor/issues/{issue['id']}/send", params=choice)
    assert "the segment <strong>Paying VIPs</strong>" in confirm.text
    shown = _send_via_console(ctx, client, csrf, issue["id"], choice)
    frozen = _frozen(ctx, issue["id"])
    assert frozen == expected
    assert shown == len(expected)
    count_api = client.get(f"/segments/{segment_id}/count", headers=editor).json()["count"]
    assert count_api == len(expected)


def test_a_send_to_an_ad_hoc_filter_and_to_everyone_from_the_console(
    ctx: Context, client: TestClient, editor: dict[str, str]
) -> None:
    csrf = _signed_in(ctx, client)
    known = _population(ctx, DEFAULT_NEWSLETTER_ID)
    first = new_issue(client, editor)
    confirm = client.get(
        f"/editor/issues/{first['id']}/send", params={"audience": "filter", "filter": FILTER}
    )
    assert "match the filter <code" in confirm.text
    shown = _send_via_console(
        ctx, client, csrf, first["id"], {"audience": "filter", "filter": FILTER}
    )
    assert _frozen(ctx, first["id"]) == matching(known)
    assert shown == len(matching(known))

    second = new_issue(client, editor, subject="Second", slug="second")
    everyone = {sid for sid, r in known.items() if r["ok"]}
    shown = _send_via_console(ctx, client, csrf, second["id"], {"audience": "everyone"})
    assert _frozen(ctx, second["id"]) == everyone and shown == len(everyone)

    third = new_issue(client, editor, subject="Third", slug="third")
    refused = client.get(
        f"/editor/issues/{third['id']}/send", params={"audience": "filter", "filter": "tag:("}
    )
    assert refused.status_code == 422 and "position 5" in refused.text


def test_a_segment_of_another_newsletter_is_refused_for_an_issue(
    ctx: Context, client: TestClient, editor: dict[str, str]
) -> None:
    csrf = _signed_in(ctx, client)
    client.post("/newsletters", json={"slug": "weekend", "name": "Weekend"}, headers=editor)
    client.post(
        "/editor/segments",
        data={"csrf_token": csrf, "name": "W", "filter": "tag:vip", "newsletter": "weekend"},
    )
    with session_scope(ctx.sessions) as session:
        segment_id = session.scalar(select(Segment.id))
    issue = new_issue(client, editor, blocks=SIMPLE_BLOCKS)
    assert f'<option value="{segment_id}">' not in client.get(f"/editor/issues/{issue['id']}").text
    refused = client.get(
        f"/editor/issues/{issue['id']}/send",
        params={"audience": "segment", "segment": str(segment_id)},
    )
    assert refused.status_code == 422 and "another newsletter" in refused.text


def test_confirmations_count_only_the_issue_s_newsletter(
    ctx: Context, client: TestClient, editor: dict[str, str]
) -> None:
    """Everyone, at once or at their local time, means everyone who takes this newsletter."""
    csrf = _signed_in(ctx, client)
    weekend = client.post(
        "/newsletters", json={"slug": "weekend", "name": "Weekend"}, headers=editor
    )
    ids = add_subscribers(ctx, 9)
    with session_scope(ctx.sessions) as session:
        for sid in ids[:4]:
            set_subscription(
                session, sid, weekend.json()["id"], SubscriptionStatus.active, utcnow()
            )
    issue = new_issue(client, editor, newsletter="weekend")
    tomorrow = (utcnow().date() + timedelta(days=1)).isoformat()
    local = client.get(
        f"/editor/issues/{issue['id']}/send-local",
        params={"local_time": "06:00", "local_date": tomorrow},
    )
    assert "Send to 4 readers at their time" in local.text
    assert (
        "<strong data-recipients>4</strong>"
        in client.get(f"/editor/issues/{issue['id']}/send").text
    )
    _send_via_console(ctx, client, csrf, issue["id"], {"audience": "everyone"})
    assert _frozen(ctx, issue["id"]) == set(ids[:4])


def test_a_sent_issue_s_page_names_the_filter_it_went_to(
    ctx: Context, client: TestClient, editor: dict[str, str]
) -> None:
    csrf = _signed_in(ctx, client)
    add_subscribers(ctx, 3)
    issue = new_issue(client, editor)
    typed = 'attr.company = "<b>x</b>" or not tag:vip'
    _send_via_console(ctx, client, csrf, issue["id"], {"audience": "filter", "filter": typed})
    page = client.get(f"/editor/issues/{issue['id']}").text
    assert "to readers matching <code" in page
    assert "attr.company = &#34;&lt;b&gt;x&lt;/b&gt;&#34; or not tag:vip" in page


def test_an_autosaved_new_draft_lands_in_the_newsletter_chosen_on_its_form(
    ctx: Context, client: TestClient, editor: dict[str, str]
) -> None:
    csrf = _signed_in(ctx, client)
    assert 'id="switch-newsletter"' not in client.get("/editor/issues").text  # one newsletter
    client.post("/newsletters", json={"slug": "weekend", "name": "Weekend"}, headers=editor)
    assert 'id="switch-newsletter"' in client.get("/editor/issues").text
    markdown = "---\nsubject: Autosaved Saturday\n---\n## Lead {lead}\nHello.\n"
    saved = client.post(
        "/editor/issues/autosave",
        data={"markdown": markdown, "newsletter": "weekend"},
        headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
    )
    assert saved.status_code == 200 and saved.json()["saved"] is True
    with session_scope(ctx.sessions) as session:
        issue = session.scalar(select(Issue).where(Issue.subject == "Autosaved Saturday"))
        assert issue is not None
        assert issue.newsletter_id == session.scalar(
            select(Newsletter.id).where(Newsletter.slug == "weekend")
        )
