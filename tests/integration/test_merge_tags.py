"""Merge tags: each reader's own name and attributes in their copy, escaped, with defaults.

Messages travel through the real SMTP test server and are read back by decoding their MIME
parts, so the quoted-printable fill is checked as a mail client sees it.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from fastapi.testclient import TestClient

from app.audience.newsletters import set_subscription
from app.context import Context
from app.db import session_scope
from app.models import Subscriber, SubscriptionStatus, utcnow
from app.rendering.blocks import parse_blocks
from app.sends.compose import PreparedMessage
from tests.console_support import add_account, sign_in
from tests.helpers import add_subscribers, new_issue, run_worker
from tests.smtp_server import SMTPTestServer

# Long enough that quoted-printable wraps around the tags.
FILLER = " ".join(["The morning's stories, read before coffee."] * 6)
BLOCKS: list[dict[str, Any]] = [
    {"type": "lead", "title": 'Hello {{ name | "there" }}', "body": "Dear {{name}}, " + FILLER},
    {
        "type": "markdown",
        "body": 'Greetings to everyone at **{{ attr.company | "your team" }}**.\n\n'
        + FILLER
        + ' {{  attr.company|"your team"  }} and {{ name }}!',
    },
    {"type": "links", "title": "Read", "items": [{"title": "A", "url": "https://example.org/a"}]},
]
EVE = "<b>Eve</b>"
ZOE = "Zoë Ünïcode-Ñame " * 6  # non-ASCII, long enough to be wrapped itself
DOT = ".dot & co"


def _readers(ctx: Context, people: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """Give the first len(people) readers these names and attributes; return email -> id."""
    ids = add_subscribers(ctx, len(people))
    with session_scope(ctx.sessions) as session:
        out = {}
        for sid, (name, attributes) in zip(ids, people, strict=True):
            row = session.get_one(Subscriber, sid)
            row.name = name
            row.attributes = attributes
            out[row.email] = sid
        return out


def _parts(msg: EmailMessage) -> tuple[str, str]:
    html = msg.get_body(("html",))
    text = msg.get_body(("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content()


def _body_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")


def test_each_reader_gets_their_own_values_escaped_in_html_and_plain_in_text(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    emails = _readers(
        ctx,
        [
            (EVE, {"company": "Acme & <Sons>"}),
            (ZOE.strip(), {"company": "Zoë GmbH", "seats": 3}),
            ("", {}),
            (DOT, {"company": "   "}),  # blank counts as missing
        ],
    )
    issue = new_issue(client, editor, blocks=BLOCKS)
    sent = client.post(f"/issues/{issue['id']}/send", json={}, headers=editor)
    assert sent.status_code == 202, sent.text
    run_worker(ctx)
    got = {r.rcpt_tos[0]: r for r in smtp_server.handler.wait_for(len(emails))}
    assert set(got) == set(emails)
    eve, zoe, nameless, dot = (got[e] for e in emails)

    html, text = _parts(eve.message())
    assert "Hello &lt;b&gt;Eve&lt;/b&gt;" in html and "<b>Eve</b>" not in html
    assert "Dear &lt;b&gt;Eve&lt;/b&gt;," in html
    assert "<strong>Acme &amp; &lt;Sons&gt;</strong>" in html
    assert "Hello <b>Eve</b>" in text and "Dear <b>Eve</b>," in text
    assert "Greetings to everyone at Acme & <Sons>." in text
    assert "Acme & <Sons> and <b>Eve</b>!" in " ".join(text.split())

    html, text = _parts(zoe.message())
    zoe_name = ZOE.strip()
    assert f"Hello {zoe_name}" in html and f"Dear {zoe_name}," in html
    assert "Zoë GmbH" in html and "Zoë GmbH" in text
    assert f"Dear {zoe_name}," in " ".join(text.split())
    assert "Eve" not in html + text  # nobody else's values

    html, text = _parts(nameless.message())
    assert "Hello there" in html and "Hello there" in text  # the default
    assert "Dear ," in html and "Dear ," in text  # no default: nothing
    # The "." right after a value starts a wire line: it arrives only if it was dot-stuffed.
    assert "your team" in html and "Greetings to everyone at your team." in text

    html, text = _parts(dot.message())
    assert "Hello .dot &amp; co" in html and "Hello .dot & co" in text
    assert "Greetings to everyone at your team." in text

    for received in got.values():
        # Quoted-printable lines stay within 76 characters around the inserted values.
        assert max(len(line) for line in _body_lines(received.data)) <= 76
        assert b"MPXMERGE" not in received.data


def test_the_web_page_preview_and_test_copy_show_defaults_only(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    _readers(ctx, [(EVE, {"company": "Acme"})])
    issue = new_issue(client, editor, slug="merge-web", blocks=BLOCKS)
    preview = client.get(f"/issues/{issue['id']}/preview", headers=editor).text
    assert "Hello there" in preview and "your team" in preview and "MPXMERGE" not in preview

    test = client.post(
        f"/issues/{issue['id']}/test", json={"to": ["editor@example.org"]}, headers=editor
    )
    assert test.status_code == 202, test.text
    run_worker(ctx)
    (copy,) = smtp_server.handler.wait_for(1)
    html, text = _parts(copy.message())
    assert "Hello there" in html and "Hello there" in text
    assert "Eve" not in html + text and "Acme" not in html + text

    assert client.post(f"/issues/{issue['id']}/send", json={}, headers=editor).status_code == 202
    page = client.get("/archive/merge-web")
    assert page.status_code == 200
    assert "Hello there" in page.text and "your team" in page.text
    assert "Eve" not in page.text and "Acme" not in page.text and "MPXMERGE" not in page.text


def test_malformed_tags_are_refused_naming_the_block_field_and_line(
    client: TestClient, editor: dict[str, str]
) -> None:
    def refused(blocks: list[dict[str, Any]], **fields: Any) -> str:
        body = {"subject": "Tags", "blocks": blocks, **fields}
        resp = client.post("/issues", json=body, headers=editor)
        assert resp.status_code == 422, resp.text
        return resp.text

    lead = {"type": "lead", "title": "T", "body": "ok"}
    msg = refused([lead, {"type": "markdown", "body": "one\ntwo\nHi {{ name"}])
    assert "block 2 (markdown): body, line 3" in msg and "unclosed" in msg
    msg = refused([lead, {"type": "markdown", "body": "Hi {{ foo }}"}])
    assert "block 2 (markdown): body, line 1" in msg and "unknown merge tag" in msg
    msg = refused([{"type": "lead", "title": "{{ attr.company | friend }}", "body": "x"}])
    assert "block 1 (lead): title" in msg and "unknown merge tag" in msg
    # A reader's value never goes into a link: click links are signed once per issue.
    link = {"type": "markdown", "body": "[site](https://example.org/?who={{name}})"}
    assert "link or image address" in refused([lead, link])
    card = {"title": "A", "url": "https://example.org/{{name}}"}
    msg = refused([lead, {"type": "links", "title": "L", "items": [card]}])
    assert "block 2 (links): items[0].url" in msg and "link address" in msg
    assert "subject" in refused([lead], subject="Hi {{ name }}")
    assert "preheader" in refused([lead], preheader='For {{ attr.company | "you" }}')

    # The same rules on an edit.
    issue = new_issue(client, editor)
    resp = client.patch(
        f"/issues/{issue['id']}",
        json={"blocks": [lead, {"type": "markdown", "body": "{{ nam }}"}]},
        headers=editor,
    )
    assert resp.status_code == 422 and "block 2 (markdown): body, line 1" in resp.text
    # A literal pair of braces is written with a Markdown escape.
    ok = client.post(
        "/issues",
        json={"subject": "Braces", "blocks": [{"type": "markdown", "body": r"Use {\{ x }}"}]},
        headers=editor,
    )
    assert ok.status_code == 201, ok.text


def test_the_check_counts_recipients_an_attribute_without_default_leaves_empty(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    _readers(
        ctx,
        [("Ann", {"company": "Acme"}), ("", {"plan": "pro"}), ("Bo", {}), ("Cy", {"company": ""})],
    )
    blocks = [
        {"type": "lead", "title": "Hi", "body": "Hello {{ name }}."},
        {"type": "markdown", "body": 'At {{ attr.plan | "free" }}: {{ attr.company }} news.'},
    ]
    issue = new_issue(client, editor, blocks=blocks)
    report = client.get(f"/issues/{issue['id']}/check?links=false", headers=editor).json()
    by_code = {f["code"]: f for f in report["findings"]}
    error = by_code["merge_tag_no_default"]
    assert error["level"] == "error" and error["block"] == 2
    assert "3 readers have no `company`" in error["message"]
    assert by_code["merge_tag_no_name"]["level"] == "warning"
    assert "1 reader has no name" in by_code["merge_tag_no_name"]["message"]
    assert "plan" not in str(report["findings"])  # it has a default

    refused = client.post(f"/issues/{issue['id']}/send", json={}, headers=editor)
    assert refused.status_code == 422 and "3 readers have no `company`" in refused.text
    # Sent only to the readers who have one, nothing is missing.
    sent = client.post(
        f"/issues/{issue['id']}/send", json={"filter": 'attr.company = "Acme"'}, headers=editor
    )
    assert sent.status_code == 202, sent.text
    assert sent.json()["recipients"] == 1
    run_worker(ctx)
    (only,) = smtp_server.handler.wait_for(1)
    _, text = _parts(only.message())
    assert "At free: Acme news." in text and "Hello Ann." in text


def test_an_issue_in_markdown_keeps_its_tags_and_a_bad_one_names_the_line(
    client: TestClient, editor: dict[str, str]
) -> None:
    head = {**editor, "Content-Type": "text/markdown"}
    good = (
        '---\nsubject: Tags\n---\n## Hello {lead}\nHi {{ name | "there" }}, from {{ attr.city }}.\n'
    )
    resp = client.post("/issues", content=good, headers=head)
    assert resp.status_code == 201, resp.text
    again = client.get(f"/issues/{resp.json()['id']}/markdown", headers=editor).text
    assert 'Hi {{ name | "there" }}, from {{ attr.city }}.' in again

    bad = "---\nsubject: Tags\n---\n## Hello {lead}\nFine.\n\n## {markdown}\nHi {{ nme }}\n"
    resp = client.post("/issues", content=bad, headers=head)
    assert resp.status_code == 422
    assert "line 8: markdown block: unknown merge tag" in resp.text


def test_the_archive_list_and_feed_excerpts_show_defaults(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _readers(ctx, [(EVE, {})])
    blocks = [{"type": "lead", "title": "T", "body": 'Morning, {{ name | "reader" }}{{ name }}!'}]
    issue = new_issue(client, editor, slug="merge-list", blocks=blocks)
    assert client.post(f"/issues/{issue['id']}/send", json={}, headers=editor).status_code == 202
    for path in ("/archive", "/archive/feed.xml"):
        page = client.get(path).text
        assert "Morning, reader!" in page and "{{" not in page, path


def test_the_wire_bytes_are_the_signed_bytes_dot_stuffed(ctx: Context) -> None:
    # DKIM signs fill(); DATA carries fill_wire(): they must be the same message.
    lines = [f"{{{{ name }}}}.{i}" for i in range(30)]
    body = "{{ name }}\n\n.{{ attr.x }}.\n\n" + "\n\n".join(lines)
    blocks = parse_blocks([{"type": "markdown", "body": body}])
    compiled = ctx.renderer.compile_issue(subject="S", preheader="", slug="s", blocks=blocks)
    prepared = PreparedMessage.build(compiled, ctx.settings)
    token = ctx.tokens.unsubscribe_token(1, "abcdefgh")
    fields = {
        "to": "a@example.org",
        "unsubscribe_token": token,
        "preferences_token": ctx.tokens.preferences_token(1, "abcdefgh"),
        "message_id": "<m@example.org>",
        "date": "Mon, 07 Dec 2026 06:00:00 +0000",
    }
    for name, attrs in [(".", {"x": "."}), ("", {}), (ZOE, {"x": "=?utf-8?q?x?= \r\nBcc: x"})]:
        merge = prepared.merge_values(name, attrs)
        plain = prepared.fill(**fields, merge=merge)
        wire = prepared.fill_wire(**fields, merge=merge)
        assert wire.endswith(b"\r\n.\r\n")
        assert wire[: -len(b".\r\n")].replace(b"\r\n..", b"\r\n.") == plain
        assert b"\nBcc:" not in plain  # a value never makes a line of its own


def test_the_console_send_confirmation_shows_the_missing_attribute(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _readers(ctx, [("Ann", {"company": "Acme"}), ("Bo", {})])
    blocks = [{"type": "lead", "title": "Hi", "body": "News for {{ attr.company }}."}]
    issue = new_issue(client, editor, blocks=blocks)
    add_account(ctx)
    sign_in(client)
    confirm = client.get(f"/editor/issues/{issue['id']}/send").text
    assert "1 reader has no `company`" in confirm
    preview = client.get(f"/editor/issues/{issue['id']}/preview")
    assert preview.status_code == 200 and "1 reader has no" in preview.text


def test_the_newsletter_tag_is_filled_at_render_also_in_the_subject(
    client: TestClient, editor: dict[str, str], ctx: Context, smtp_server: SMTPTestServer
) -> None:
    """`{{ newsletter }}` is the same for every reader: allowed in the subject, escaped in HTML."""
    made = client.post("/newsletters", json={"slug": "eve", "name": "Eve & <Co>"}, headers=editor)
    assert made.status_code == 201, made.text
    blocks = [{"type": "markdown", "body": 'This is {{ newsletter }}, {{ name | "friend" }}.'}]
    refused = client.post(
        "/issues",
        json={"subject": "{{ name }} news", "blocks": blocks, "newsletter": "eve"},
        headers=editor,
    )
    assert refused.status_code == 422, refused.text
    issue = new_issue(
        client, editor, subject="News from {{ newsletter }}", blocks=blocks, newsletter="eve"
    )
    ((_, sid),) = _readers(ctx, [("Ann", {})]).items()
    with session_scope(ctx.sessions) as session:
        set_subscription(session, sid, made.json()["id"], SubscriptionStatus.active, utcnow())
    sent = client.post(f"/issues/{issue['id']}/send", json={}, headers=editor)
    assert sent.status_code == 202, sent.text
    run_worker(ctx)
    (got,) = smtp_server.handler.wait_for(1)
    message = got.message()
    assert str(message["Subject"]) == "News from Eve & <Co>"
    html, text = _parts(message)
    assert "This is Eve &amp; &lt;Co&gt;, Ann." in " ".join(html.split())
    assert "This is Eve & <Co>, Ann." in " ".join(text.split())
    assert "{{" not in html + text and "MPXNEWSLETTER" not in html + text
