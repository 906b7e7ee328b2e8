"""Issues written in Markdown: the contract's grammar, both ways, and line-numbered errors."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.errors import InvalidInput
from app.issues.markdown_format import issue_to_markdown, parse_issue_markdown, to_markdown
from app.issues.schemas import IssueIn
from app.rendering.blocks import BLOCK_TYPES, parse_blocks
from app.rendering.placeholders import UNSUBSCRIBE_TOKEN

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_JSON = json.loads((ROOT / "examples" / "ai-morning-post.json").read_text())

CONTRACT_EXAMPLE = """\
---
subject: The Specialization Wave
preheader: Small models, big gains
---
## Domain-Specific AI Models Challenge One-Size-Fits-All {lead}
From Arabic speech recognition to **mathematical reasoning**.

## By the Numbers {stats}
- **1.5B** parameters in OpenMath-Nemotron
- **$50** monthly cost

## Tools of the Week {cards}
- [OpenMath-Nemotron 1.5B](https://example.org/openmath) — Mathematical reasoning
- **Whisper-Small-AR-Mix** — Arabic speech recognition

## Weekend Reading {links}
- [The Case for Small Language Models](https://example.org/slm)

## Subscribe to AI Morning Post {subscribe}
Get daily AI insights delivered every morning.
"""


def test_the_contract_example() -> None:
    issue = parse_issue_markdown(CONTRACT_EXAMPLE)
    assert issue.subject == "The Specialization Wave"
    assert issue.preheader == "Small models, big gains"
    assert issue.slug is None
    assert issue.blocks == parse_blocks(
        [
            {
                "type": "lead",
                "title": "Domain-Specific AI Models Challenge One-Size-Fits-All",
                "body": "From Arabic speech recognition to **mathematical reasoning**.",
            },
            {
                "type": "stats",
                "title": "By the Numbers",
                "items": [
                    {"value": "1.5B", "label": "parameters in OpenMath-Nemotron"},
                    {"value": "$50", "label": "monthly cost"},
                ],
            },
            {
                "type": "cards",
                "title": "Tools of the Week",
                "items": [
                    {
                        "title": "OpenMath-Nemotron 1.5B",
                        "url": "https://example.org/openmath",
                        "description": "Mathematical reasoning",
                    },
                    {"title": "Whisper-Small-AR-Mix", "description": "Arabic speech recognition"},
                ],
            },
            {
                "type": "links",
                "title": "Weekend Reading",
                "items": [
                    {
                        "title": "The Case for Small Language Models",
                        "url": "https://example.org/slm",
                    }
                ],
            },
            {
                "type": "subscribe",
                "title": "Subscribe to AI Morning Post",
                "body": "Get daily AI insights delivered every morning.",
            },
        ]
    )


def test_the_sample_issue_file_is_the_json_sample() -> None:
    issue = parse_issue_markdown((ROOT / "examples" / "ai-morning-post.md").read_text())
    assert issue.subject == SAMPLE_JSON["subject"]
    assert issue.preheader == SAMPLE_JSON["preheader"]
    assert issue.slug == SAMPLE_JSON["slug"]
    assert issue.blocks == parse_blocks(SAMPLE_JSON["blocks"])


def test_the_sample_round_trips() -> None:
    md = issue_to_markdown(IssueIn(**SAMPLE_JSON))
    back = parse_issue_markdown(md)
    assert back.blocks == parse_blocks(SAMPLE_JSON["blocks"])
    assert (back.subject, back.preheader, back.slug) == (
        SAMPLE_JSON["subject"],
        SAMPLE_JSON["preheader"],
        SAMPLE_JSON["slug"],
    )
    assert "{json" not in md and '- {"' not in md  # the sample needs no fallback forms


# One or more blocks of every type, plain and awkward (content that looks like the grammar).
EVERY_TYPE: dict[str, list[dict[str, Any]]] = {
    "masthead": [
        {"type": "masthead"},
        {"type": "masthead", "date": "Tuesday, 3 March 2026"},
        {"type": "masthead", "date": '"Quoted" day'},
    ],
    "lead": [
        {"type": "lead", "title": "T", "body": "Body"},
        {
            "type": "lead",
            "kicker": "K",
            "title": "Title {article}",
            "summary": "S\n\nTwo",
            "body": "## not a block\n  ### indented\nKicker: in the body",
        },
        {"type": "lead", "title": '"Quoted title"', "body": "Summary: looks like a field"},
    ],
    "article": [
        {
            "type": "article",
            "title": "Plain",
            "body": "Para one.\n\nPara two with [a](https://x.org).",
        },
        {"type": "article", "kicker": "Deep Dive", "title": "T", "body": "```\n## code\n```"},
        {"type": "article", "title": "T {bad}", "body": "- a list\n- in the body"},
    ],
    "stats": [
        {"type": "stats", "title": "N", "items": [{"value": "1.5B", "label": "params"}]},
        {
            "type": "stats",
            "title": "N",
            "items": [
                {"value": "a**b", "label": "stars in the value"},
                {"value": "5", "label": "— starts with a dash"},
                {"value": "[x](https://y.org)", "label": "looks like a link"},
            ],
        },
    ],
    "cards": [
        {
            "type": "cards",
            "title": "C",
            "intro": "Intro text",
            "items": [
                {"title": "A", "description": "d", "url": "https://a.org/x_(y)"},
                {"title": "B", "description": "no url"},
            ],
        },
        {
            "type": "cards",
            "title": "C",
            "intro": "- intro that looks like an item",
            "items": [
                {"title": "A] (b", "description": "multi\nline", "url": "https://a.org"},
                {"title": "B", "description": '"quoted" start'},
                {"title": "{x}", "description": "— dash"},
            ],
        },
    ],
    "links": [
        {"type": "links", "title": "L", "items": [{"title": "Only a title"}]},
        {
            "type": "links",
            "title": "L",
            "intro": "Intro: twice",
            "items": [
                {"title": "A", "url": "https://a.org"},
                {"title": "B", "url": "mailto:b@example.org", "description": "with text"},
                {"title": "C", "description": "no url, text"},
            ],
        },
    ],
    "opinion": [
        {
            "type": "opinion",
            "title": "Opinion & Analysis",
            "items": [
                {"title": "One", "body": "Body one"},
                {"title": "Two", "body": "Body\n\ntwo"},
            ],
        },
        {
            "type": "opinion",
            "title": "O",
            "items": [{"title": '"Q"', "body": "### looks like a piece\n## and a block"}],
        },
    ],
    "trending": [
        {
            "type": "trending",
            "title": "T",
            "groups": [
                {
                    "source": "GitHub",
                    "label": "Repos",
                    "items": [{"title": "a/b", "url": "https://github.com/a/b", "metric": "★ 1k"}],
                },
                {"source": "HF", "items": [{"title": "x", "description": "y"}]},
            ],
        },
        {
            "type": "trending",
            "title": "T",
            "intro": "- starts like an item",
            "groups": [
                {
                    "source": "A — B",
                    "label": "C — D",
                    "items": [{"title": "t (x)", "metric": "m (n)", "description": "(d) e"}],
                },
            ],
        },
    ],
    "movers": [
        {
            "type": "movers",
            "title": "M",
            "intro": "Week on week",
            "items": [
                {"name": "N", "change": "+3%", "note": "n", "url": "https://n.org"},
                {"name": "O", "change": "−18%"},
            ],
        },
        {
            "type": "movers",
            "title": "M",
            "items": [{"name": "N (beta)", "change": "(+3%)", "note": '"n"'}],
        },
    ],
    "subscribe": [
        {"type": "subscribe", "title": "Subscribe", "body": "Get it every morning."},
    ],
    "markdown": [
        {"type": "markdown", "body": "Free **Markdown**.\n\n> quoted\n\n---\n\nafter a rule"},
        {"type": "markdown", "body": "Date: not a field\n##\n## {lead}"},
    ],
    "image": [
        {"type": "image", "url": "https://a.org/cat.jpg", "alt": "A cat"},
        {"type": "image", "url": "https://a.org/c.png", "alt": "", "caption": "A caption {x}"},
        {
            "type": "image",
            "url": "https://a.org/(b).png",
            "alt": "brackets ] [ and (parens)",
            "caption": '"quoted"',
            "link": "https://a.org/story",
        },
    ],
}


def test_every_block_type_is_covered() -> None:
    assert set(EVERY_TYPE) == set(BLOCK_TYPES)


@pytest.mark.parametrize("kind", sorted(EVERY_TYPE))
def test_round_trip_of_every_block_type(kind: str) -> None:
    blocks = [{"type": "markdown", "body": "first"}, *EVERY_TYPE[kind]]
    md = to_markdown(subject="S", blocks=blocks)
    assert parse_issue_markdown(md).blocks == parse_blocks(blocks), md
    # Each alone too, first in the issue (a first masthead with a date is the front matter's date).
    for block in EVERY_TYPE[kind]:
        md = to_markdown(subject="S", blocks=[block])
        assert parse_issue_markdown(md).blocks == parse_blocks([block]), md


def test_front_matter_date_is_a_masthead_and_values_stay_strings() -> None:
    md = "---\nsubject: Yes\npreheader: 1.5\ndate: 2026-03-03\nslug: a-b\n---\n## T\nBody\n"
    issue = parse_issue_markdown(md)
    assert issue.subject == "Yes" and issue.preheader == "1.5" and issue.slug == "a-b"
    assert issue.blocks[0] == {"type": "masthead", "date": "2026-03-03"}
    assert issue.blocks[1]["type"] == "article"  # no {type}: an article


def test_readable_forms_for_hand_written_files() -> None:
    md = """---
subject: S
---
## Lead {lead}
Kicker: Today
Summary: In short

Body.

## {markdown}
Free text.

## Trending {trending}
### GitHub – Repos
* [a/b](https://github.com/a/b) (★ 5) – A repo
  that wraps
+ **c/d**

## Movers {movers}
- Plain name (+5%) — why
- [Linked](https://x.org) (−2%)

## Links {links}
- Plain title — with a description
- {"title": "As JSON", "url": "https://j.org"}
"""
    blocks = parse_issue_markdown(md).blocks
    assert blocks[0]["kicker"] == "Today" and blocks[0]["summary"] == "In short"
    assert blocks[1] == {"type": "markdown", "body": "Free text."}
    group = blocks[2]["groups"][0]
    assert group["source"] == "GitHub" and group["label"] == "Repos"
    assert group["items"][0] == {
        "title": "a/b",
        "url": "https://github.com/a/b",
        "metric": "★ 5",
        "description": "A repo\nthat wraps",
    }
    assert group["items"][1]["title"] == "c/d"
    assert blocks[3]["items"][0] == {
        "name": "Plain name",
        "change": "+5%",
        "note": "why",
        "url": None,
    }
    assert blocks[3]["items"][1]["url"] == "https://x.org"
    assert blocks[4]["items"][0] == {
        "title": "Plain title",
        "description": "with a description",
        "url": None,
    }
    assert blocks[4]["items"][1]["url"] == "https://j.org"


BAD = [
    ("## T\nBody\n", 1, "front matter"),
    ("---\nsubject: S\n## T\n", 1, "never closed"),
    ("---\npreheader: P\n---\n## T\nBody\n", 3, "needs a subject"),
    ("---\nsubject: S\nfoo: bar\n---\n## T\nBody\n", 3, "unknown front matter key 'foo'"),
    ("---\nsubject: S\ntitle: [a\n---\n## T\nBody\n", 3, "not valid YAML"),
    ("---\nsubject: S\n---\nintro\n## T\nBody\n", 4, "before the first"),
    ("---\nsubject: S\n---\n\n## T {leed}\nBody\n", 5, "unknown block type {leed}"),
    ("---\nsubject: S\n---\n## T\nBody\n## T2 {lead}\n", 6, "body is required"),
    ("---\nsubject: S\n---\n## {lead}\nBody\n", 4, "title is required"),
    ("---\nsubject: S\n---\n## Stats {stats}\nsome text\n", 5, "only list items"),
    ("---\nsubject: S\n---\n## Stats {stats}\n", 4, "at least one list item"),
    (
        "---\nsubject: S\n---\n## C {cards}\n\n- [A](https://a.org)\n- **B** — ok\n",
        6,
        "description is required",
    ),
    ("---\nsubject: S\n---\n## L {links}\n- [A](javascript:x)\n", 5, "http(s)"),
    (
        "---\nsubject: S\n---\n## L {links}\n- [A](https://a.org)\nstray\n",
        6,
        "expected a list item",
    ),
    ("---\nsubject: S\n---\n## M {movers}\n- **N** — no change\n", 5, "change in parentheses"),
    ("---\nsubject: S\n---\n## O {opinion}\ntext\n### P\nbody\n", 5, "before the first"),
    ("---\nsubject: S\n---\n## O {opinion}\n### P\n", 5, "body is required"),
    ("---\nsubject: S\n---\n## T {trending}\n- [a](https://a.org)\n", 5, "group heading"),
    (
        "---\nsubject: S\n---\n## T {trending}\n### G\n\n- [a](https://a.org)\n- [b](ftp://b)\n",
        8,
        "trending item: url",
    ),
    ("---\nsubject: S\n---\n## Title {markdown}\nx\n", 4, "has no title"),
    ("---\nsubject: S\n---\n## {masthead}\nDate: d\nmore\n", 6, "only a 'Date: …' line"),
    ("---\nsubject: S\nslug: Not A Slug\n---\n## T\nBody\n", 3, "slug"),
    ("---\nsubject: S\n---\n", 4, "no blocks"),
    ("---\nsubject: S\n---\n" + "## T\nb\n" * 101, 204, "at most 100 blocks"),
    ("---\nsubject: S\n---\n## T\nHello " + UNSUBSCRIBE_TOKEN + "\n", 4, "placeholder"),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD)
def test_malformed_files_name_the_line(text: str, line: int, words: str | None) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_issue_markdown(text)
    assert err.value.message.startswith(f"line {line}: "), err.value.message
    if words:
        assert words in err.value.message, err.value.message


# --------------------------------------------------------------------------- over HTTP

MD_HEADERS = {"Content-Type": "text/markdown; charset=utf-8"}


def test_post_markdown_creates_the_same_issue_as_json(client: TestClient, editor: dict) -> None:
    md = (ROOT / "examples" / "ai-morning-post.md").read_text()
    resp = client.post("/issues", content=md.encode(), headers={**editor, **MD_HEADERS})
    assert resp.status_code == 201, resp.text
    from_md = resp.json()
    as_json = {**SAMPLE_JSON, "slug": "from-json"}
    from_json = client.post("/issues", json=as_json, headers=editor).json()
    assert from_md["status"] == "draft" and from_md["slug"] == SAMPLE_JSON["slug"]
    assert from_md["blocks"] == from_json["blocks"]
    assert set(from_md) == set(from_json)

    got = client.get(f"/issues/{from_md['id']}/markdown", headers=editor)
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/markdown")
    assert parse_issue_markdown(got.text).blocks == from_md["blocks"]
    assert got.text == md  # the sample file is what the server writes


def test_post_markdown_errors_name_the_line(client: TestClient, editor: dict) -> None:
    bad = "---\nsubject: S\n---\n## Tools {cards}\n- [A](https://a.org)\n"
    resp = client.post("/issues", content=bad.encode(), headers={**editor, **MD_HEADERS})
    assert resp.status_code == 422
    assert resp.json()["detail"].startswith("line 5: cards item: description is required")
    resp = client.post("/issues", content=b"\xff\xfe", headers={**editor, **MD_HEADERS})
    assert resp.status_code == 422 and "UTF-8" in resp.json()["detail"]
    # Markdown needs a token like JSON does, and JSON errors keep their shape.
    assert client.post("/issues", content=b"x", headers=MD_HEADERS).status_code == 401
    resp = client.post("/issues", json={"subject": "S"}, headers=editor)
    assert resp.status_code == 422 and "blocks" in resp.json()["detail"]


def test_openapi_documents_both_bodies(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/issues"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/IssueIn"}
    assert body["text/markdown"]["schema"]["type"] == "string"
    markdown = spec["paths"]["/issues/{issue_id}/markdown"]["get"]["responses"]["200"]["content"]
    assert "text/markdown" in markdown


# --------------------------------------------------------------------------- awkward content

PIECES = [
    "a", "b ", " ", "\n", "\n\n", "#", "## ", "### ", "- ", "* ", "**", "[", "]", "(", ")",
    "{", "}", '"', "—", " — ", ":", "Kicker: ", "Intro: ", "Summary: ", "Date: ", "  ", "\t",
    "`", "```", "---", "https://x.org", "{lead}", "\\",
]  # fmt: skip
IMAGE_URLS = ["https://a.org/x.png", "https://a.org/(b).jpg", "https://a.org/)"]
URLS = [None, "https://a.org/x", "https://a.org/(b)", "mailto:a@b.org", "https://a.org/)"]


def _random_block(rng: random.Random) -> dict[str, Any]:
    def s(n: int = 6) -> str:
        return "".join(rng.choice(PIECES) for _ in range(rng.randint(1, n)))

    def opt(n: int = 6) -> str | None:
        return rng.choice([None, s(n)])

    def some(make: Any) -> list[Any]:
        return [make() for _ in range(rng.randint(1, 3))]

    kind = rng.choice(sorted(BLOCK_TYPES))
    block: dict[str, Any] = {
        "masthead": lambda: {"date": opt()},
        "lead": lambda: {"kicker": opt(), "title": s(), "summary": opt(), "body": s(12)},
        "article": lambda: {"kicker": opt(), "title": s(), "body": s(12)},
        "stats": lambda: {"title": s(), "items": some(lambda: {"value": s(), "label": s()})},
        "cards": lambda: {
            "title": s(), "intro": opt(),
            "items": some(lambda: {"title": s(), "description": s(), "url": rng.choice(URLS)}),
        },
        "links": lambda: {
            "title": s(), "intro": opt(),
            "items": some(lambda: {"title": s(), "description": opt(), "url": rng.choice(URLS)}),
        },
        "opinion": lambda: {"title": s(), "items": some(lambda: {"title": s(), "body": s(10)})},
        "trending": lambda: {
            "title": s(), "intro": opt(),
            "groups": some(lambda: {"source": s(), "label": opt(), "items": some(lambda: {
                "title": s(), "description": opt(), "url": rng.choice(URLS), "metric": opt(),
            })}),
        },
        "movers": lambda: {
            "title": s(), "intro": opt(),
            "items": some(lambda: {
                "name": s(), "change": s(), "note": opt(), "url": rng.choice(URLS),
            }),
        },
        "subscribe": lambda: {"title": s(), "body": s(10)},
        "markdown": lambda: {"body": s(12)},
        "image": lambda: {
            "url": rng.choice(IMAGE_URLS), "alt": s(), "caption": opt(), "link": rng.choice(URLS),
        },
    }[kind]()  # fmt: skip
    return {"type": kind, **{k: v for k, v in block.items() if v is not None}}


def test_round_trip_of_awkward_content() -> None:
    """Text that looks like the grammar (headings, items, fields, quotes) still reads back."""
    rng = random.Random(20260303)
    tested = 0
    for _ in range(600):
        blocks = []
        for _ in range(rng.randint(1, 4)):
            block = _random_block(rng)
            try:
                parse_blocks([block])
            except InvalidInput:
                continue  # e.g. a title of only spaces: not a valid block to begin with
            blocks.append(block)
        if not blocks:
            continue
        md = to_markdown(subject="S", blocks=blocks)
        assert parse_issue_markdown(md).blocks == parse_blocks(blocks), md
        tested += 1
    assert tested > 500
