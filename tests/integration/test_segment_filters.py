"""The segment filter language: what it means (checked against a computation in Python over
random readers, on both databases), how it refuses bad input (with positions), and that no
text in it ever reaches SQL as SQL."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.audience.filter_parse import FilterError, parse_filter
from app.context import Context
from app.db import session_scope
from app.models import (
    Click,
    Issue,
    IssueStatus,
    Subscriber,
    SubscriberStatus,
    SubscriberTag,
    Suppression,
)
from app.tokens import hash_secret

NOW = datetime.now(UTC)
ZONES = ["Europe/Berlin", "Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"]
TAGS = ["vip", "trial", "ai-news", "2fa"]
PLANS = ["pro", "free", "team", "pro_plus"]


@dataclass
class Reader:
    """What the test knows of one reader it created."""

    id: int = 0
    email: str = ""
    name: str = ""
    status: str = SubscriberStatus.active
    suppressed: bool = False
    tags: set[str] = field(default_factory=set)
    attrs: dict[str, Any] = field(default_factory=dict)
    created: datetime = NOW
    zone: str = "UTC"
    clicked: datetime | None = None


def make_readers(ctx: Context, count: int = 120, seed: int = 7) -> list[Reader]:
    """Create readers with random tags, attributes, sign-up days, zones and clicks."""
    rnd = random.Random(seed)
    readers = []
    with session_scope(ctx.sessions) as session:
        issue = Issue(slug="clicked", subject="S", status=IssueStatus.sent)
        session.add(issue)
        session.flush()
        for i in range(count):
            r = Reader(
                email=f"r{i}@{rnd.choice(['gmail.com', 'example.org', 'corp.test'])}",
                name=rnd.choice(["Ada", "Grace", "Linus", "50% off_", ""]),
                status=rnd.choice([SubscriberStatus.active] * 4 + [SubscriberStatus.unsubscribed]),
                suppressed=rnd.random() < 0.1,
                tags={t for t in TAGS if rnd.random() < 0.35},
                created=NOW - timedelta(days=rnd.randint(0, 400), hours=rnd.randint(0, 23)),
                zone=rnd.choice(ZONES),
            )
            if rnd.random() < 0.8:
                r.attrs["plan"] = rnd.choice(PLANS)
            if rnd.random() < 0.6:
                r.attrs["seats"] = rnd.randint(1, 50)
            if rnd.random() < 0.5:
                r.attrs["beta"] = rnd.random() < 0.5
            if rnd.random() < 0.5:
                # Hours off the whole day, so no click sits on a boundary the test crosses.
                r.clicked = NOW - timedelta(days=rnd.randint(0, 60), hours=rnd.randint(1, 23))
            row = Subscriber(
                email=r.email,
                email_hash=hash_secret(r.email),
                name=r.name,
                status=r.status,
                created_at=r.created,
                timezone=r.zone,
                attributes=r.attrs,
            )
            session.add(row)
            session.flush()
            r.id = row.id
            session.add_all(SubscriberTag(subscriber_id=row.id, tag=t) for t in r.tags)
            if r.suppressed:
                session.add(Suppression(email_hash=row.email_hash, reason="complaint"))
            if r.clicked:
                session.add(
                    Click(
                        issue_id=issue.id,
                        url="https://x.test",
                        subscriber_id=row.id,
                        clicked_at=r.clicked,
                    )
                )
            readers.append(r)
    return readers


def eligible(r: Reader) -> bool:
    """Tell whether a send would reach this reader at all."""
    return r.status == SubscriberStatus.active and not r.suppressed


# (filter, the same meaning in Python)
CASES: list[tuple[str, Callable[[Reader], bool]]] = [
    ("tag:vip", lambda r: "vip" in r.tags),
    ("tag:2fa", lambda r: "2fa" in r.tags),
    ("TAG:VIP and not tag:trial", lambda r: "vip" in r.tags and "trial" not in r.tags),
    ("tag:vip or tag:ai-news", lambda r: bool({"vip", "ai-news"} & r.tags)),
    ('attr.plan = "pro"', lambda r: r.attrs.get("plan") == "pro"),
    ('attr.plan != "pro"', lambda r: "plan" in r.attrs and r.attrs["plan"] != "pro"),
    ('attr.plan contains "pro"', lambda r: "pro" in str(r.attrs.get("plan", ""))),
    ("attr.seats > 10", lambda r: "seats" in r.attrs and r.attrs["seats"] > 10),
    ("attr.seats <= 10", lambda r: "seats" in r.attrs and r.attrs["seats"] <= 10),
    ("attr.beta = true", lambda r: r.attrs.get("beta") is True),
    ("attr.beta exists", lambda r: "beta" in r.attrs),
    ("not attr.plan exists", lambda r: "plan" not in r.attrs),
    (
        f"joined > {(NOW - timedelta(days=100)).date()}",
        lambda r: r.created.date() > (NOW - timedelta(days=100)).date(),
    ),
    (
        f"joined <= {(NOW - timedelta(days=100)).date()}",
        lambda r: r.created.date() <= (NOW - timedelta(days=100)).date(),
    ),
    ('timezone ~ "Europe/*"', lambda r: r.zone.startswith("Europe/")),
    ('timezone = "UTC"', lambda r: r.zone == "UTC"),
    ('email ~ "*@gmail.com"', lambda r: r.email.endswith("@gmail.com")),
    ('name contains "%"', lambda r: "%" in r.name),
    ('name ~ "*_"', lambda r: r.name.endswith("_")),
    (
        "clicked within 30d",
        lambda r: r.clicked is not None and r.clicked >= NOW - timedelta(days=30),
    ),
    ("not clicked within 2w", lambda r: not (r.clicked and r.clicked >= NOW - timedelta(weeks=2))),
    (
        'tag:vip and not tag:trial and attr.plan = "pro" or (timezone ~ "Europe/*" '
        "and clicked within 30d)",
        lambda r: (
            ("vip" in r.tags and "trial" not in r.tags and r.attrs.get("plan") == "pro")
            or (
                r.zone.startswith("Europe/")
                and bool(r.clicked and r.clicked >= NOW - timedelta(days=30))
            )
        ),
    ),
]


def test_filters_match_exactly_the_readers_a_computation_finds(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    readers = make_readers(ctx)
    for text, meaning in CASES:
        expected = sorted(r.email for r in readers if eligible(r) and meaning(r))
        resp = client.get("/segments/preview", params={"filter": text}, headers=editor)
        assert resp.status_code == 200, (text, resp.text)
        assert resp.json()["count"] == len(expected), text
        by_id = sorted(readers, key=lambda r: r.id)
        first = [r.email for r in by_id if eligible(r) and meaning(r)][:10]
        assert sorted(resp.json()["sample"]) == sorted(first), text


def test_a_saved_segment_counts_what_its_filter_previews(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    readers = make_readers(ctx)
    resp = client.post(
        "/segments",
        json={"name": "Pro in Europe", "filter": 'attr.plan = "pro" and timezone ~ "Europe/*"'},
        headers=editor,
    )
    assert resp.status_code == 201, resp.text
    seg = resp.json()
    count = client.get(f"/segments/{seg['id']}/count", headers=editor).json()["count"]
    assert count == sum(
        eligible(r) and r.attrs.get("plan") == "pro" and r.zone.startswith("Europe/")
        for r in readers
    )
    assert [s["name"] for s in client.get("/segments", headers=editor).json()] == ["Pro in Europe"]
    again = client.post(
        "/segments", json={"name": "Pro in Europe", "filter": "tag:vip"}, headers=editor
    )
    assert again.status_code == 409
    assert client.delete(f"/segments/{seg['id']}", headers=editor).status_code == 204
    assert client.get(f"/segments/{seg['id']}/count", headers=editor).status_code == 404


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("", 1, "a condition"),
        ("tag:", 5, "a tag"),
        ("tag vip", 5, '":" after tag'),
        ("tag:vip and", 12, "a condition"),
        ("tag:vip or or tag:x", 12, "a condition"),
        ("(tag:vip", 9, '")"'),
        ("tag:vip)", 8, '"and", "or" or the end'),
        ("attr.plan ==", 12, "a value"),
        ("attr.plan = pro", 13, "a value"),
        ("attr. = 1", 7, "an attribute name"),
        ("attr.plan like 'x'", 11, "=, !=, <, >"),
        ("joined > yesterday", 10, "a date"),
        ("joined > 2026-02-30", 10, "a real calendar date"),
        ("timezone ~ Europe", 12, "a quoted string"),
        ('timezone ~ "Europe/*', 12, "a quoted string"),
        ("clicked 30d", 9, '"within"'),
        ("clicked within 30", 16, "a period"),
        ("status = active", 1, "a condition"),
        ("tag:vip; DROP TABLE subscribers", 8, '"and", "or" or the end'),
    ],
)
def test_bad_filters_are_refused_with_the_position_and_what_was_expected(
    client: TestClient, editor: dict[str, str], text: str, position: int, expected: str
) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert caught.value.position + 1 == position, caught.value.message
    assert expected in caught.value.expected
    resp = client.get("/segments/preview", params={"filter": text}, headers=editor)
    assert resp.status_code == 422
    assert f"position {position}" in resp.text


def test_deep_or_long_filters_are_refused_not_recursed() -> None:
    with pytest.raises(FilterError, match="nested"):
        parse_filter("not " * 30 + "tag:vip")
    with pytest.raises(FilterError, match="conditions"):
        parse_filter(" or ".join(["tag:a"] * 60))
    with pytest.raises(FilterError, match="2000"):
        parse_filter("tag:a or " * 400)


@pytest.mark.parametrize(
    "text",
    [
        'tag:"vip\' OR 1=1 --"',
        "attr.plan = \"x' OR '1'='1\"",
        'name = "\'; DELETE FROM subscribers; --"',
        'email ~ "*\' UNION SELECT password FROM editor_accounts --"',
        'timezone contains "%\') OR 1=1 --"',
        'attr.plan contains "\\\\"',
    ],
)
def test_injection_attempts_match_nothing_and_change_nothing(
    client: TestClient, editor: dict[str, str], ctx: Context, text: str
) -> None:
    make_readers(ctx, count=30)
    resp = client.get("/segments/preview", params={"filter": text}, headers=editor)
    # Either refused as a filter, or read as a literal value that no reader has.
    assert resp.status_code in (200, 422), resp.text
    if resp.status_code == 200:
        assert resp.json()["count"] == 0
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 30


def test_segments_need_an_editor(client: TestClient) -> None:
    assert client.get("/segments").status_code == 401
    assert client.get("/segments/preview", params={"filter": "tag:vip"}).status_code == 401
    assert client.post("/segments", json={"name": "x", "filter": "tag:vip"}).status_code == 401
