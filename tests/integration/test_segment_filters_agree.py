"""Segment filters mean the same on SQLite and PostgreSQL: a comparison on an attribute matches
only values of its own type (a text value in a number attribute is no error and no match), and
`~` and `contains` ignore case."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.context import Context
from app.db import session_scope
from app.models import Subscriber, SubscriberStatus
from app.tokens import hash_secret
from tests.console_support import add_account, sign_in

# name, time zone, attributes: each attribute holds a number in some readers and text or a
# boolean in others, as a CSV import easily leaves it.
READERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "ada": ("Ada Lovelace", "Europe/London", {"seats": 10, "vip": True, "plan": "pro", "n": 3}),
    "grace": (
        "GRACE Hopper",
        "America/New_York",
        {"seats": "unlimited", "vip": "yes", "plan": "Pro", "n": True},
    ),
    "linus": ("linus", "Europe/Helsinki", {"seats": "", "vip": "true", "n": "3"}),
    "dora": ("Dora", "Asia/Tokyo", {"seats": 3, "vip": False, "plan": 5, "n": "10"}),
    "fay": ("Fay", "America/Chicago", {"seats": 5.5, "vip": 1, "plan": "team", "n": "2"}),
    "pat": ("50% OFF_", "UTC", {}),
}

# (filter, the readers it matches): the same on both databases.
CASES: list[tuple[str, set[str]]] = [
    # Numbers compare with numbers only.
    ("attr.seats > 5", {"ada", "fay"}),
    ("attr.seats < 5", {"dora"}),
    ("attr.seats >= 5.5", {"ada", "fay"}),
    ("attr.seats = 10", {"ada"}),
    ("attr.seats != 10", {"dora", "fay"}),
    ("attr.n < 5", {"ada"}),
    ("attr.vip = 1", {"fay"}),
    # `not` is the exact opposite, readers without a number there included.
    ("not attr.seats > 5", {"grace", "linus", "dora", "pat"}),
    # Booleans with booleans only: not 1, not "yes", not "true".
    ("attr.vip = true", {"ada"}),
    ("attr.vip = false", {"dora"}),
    ("attr.vip != true", {"dora"}),
    ("attr.n = true", {"grace"}),
    ("not attr.vip = true", {"grace", "linus", "dora", "fay", "pat"}),
    # Strings with strings only; = and the order are exact, contains ignores case.
    ('attr.n > "2"', {"linus"}),
    ('attr.n >= "2"', {"linus", "fay"}),
    ('attr.n < "2"', {"dora"}),
    ('attr.n = "3"', {"linus"}),
    ('attr.plan = "pro"', {"ada"}),
    ('attr.plan != "pro"', {"grace", "fay"}),
    ('attr.plan contains "PRO"', {"ada", "grace"}),
    ('attr.plan contains "5"', set()),
    ('attr.vip contains "1"', set()),
    ('attr.vip contains "tr"', {"linus"}),
    ('attr.seats = ""', {"linus"}),
    ("attr.seats exists", {"ada", "grace", "linus", "dora", "fay"}),
    # Names, time zones and addresses: ~ and contains ignore case; wildcards in the value are
    # literal.
    ('name contains "ADA"', {"ada"}),
    ('name ~ "ada*"', {"ada"}),
    ('name ~ "*hopper"', {"grace"}),
    ('name ~ "LINUS"', {"linus"}),
    ('name contains "% off_"', {"pat"}),
    ('name contains "%"', {"pat"}),
    ('name ~ "*_"', {"pat"}),
    ('name ~ "*s_"', set()),
    ('name = "Dora"', {"dora"}),
    ('name = "dora"', set()),
    ('timezone ~ "europe/*"', {"ada", "linus"}),
    ('timezone contains "NEW_YORK"', {"grace"}),
    ('timezone contains "new_"', {"grace"}),
    ('email ~ "ADA@*"', {"ada"}),
    ('attr.seats > 5 and timezone ~ "AMERICA/*"', {"fay"}),
]


def _add_readers(ctx: Context) -> None:
    with session_scope(ctx.sessions) as session:
        for key, (name, zone, attrs) in READERS.items():
            email = f"{key}@example.org"
            session.add(
                Subscriber(
                    email=email,
                    email_hash=hash_secret(email),
                    name=name,
                    status=SubscriberStatus.active,
                    timezone=zone,
                    attributes=attrs,
                )
            )


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[text for text, _ in CASES])
def test_a_filter_matches_the_same_readers_on_either_database(
    client: TestClient, editor: dict[str, str], ctx: Context, text: str, expected: set[str]
) -> None:
    _add_readers(ctx)
    resp = client.get("/segments/preview", params={"filter": text}, headers=editor)
    assert resp.status_code == 200, resp.text
    found = {email.split("@")[0] for email in resp.json()["sample"]}
    assert found == expected
    assert resp.json()["count"] == len(expected)


def test_saved_segments_on_mixed_attributes_count_and_the_console_lists_them(
    client: TestClient, editor: dict[str, str], ctx: Context
) -> None:
    _add_readers(ctx)
    counts = {}
    for name, text in [("Big", "attr.seats > 5"), ("VIP", "attr.vip = true")]:
        resp = client.post("/segments", json={"name": name, "filter": text}, headers=editor)
        assert resp.status_code == 201, resp.text
        count = client.get(f"/segments/{resp.json()['id']}/count", headers=editor)
        assert count.status_code == 200, count.text
        counts[name] = count.json()["count"]
    assert counts == {"Big": 2, "VIP": 1}
    add_account(ctx)
    sign_in(client)
    page = client.get("/editor/segments")
    assert page.status_code == 200, page.text[:500]
