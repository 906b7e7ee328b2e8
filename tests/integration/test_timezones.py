"""A time zone per subscriber: API, CSV (API and CLI), sign-up page, preferences, settings."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import ConfigError, Settings, follow_listen_address, load_settings
from app.context import Context
from app.db import session_scope
from app.models import Subscriber, utcnow
from app.rendering.compile import Renderer
from app.subscribers.csv_import import import_csv
from tests.cli_support import run_cli
from tests.helpers import nonce_of


def zone_of(ctx: Context, email: str) -> str:
    """Return the stored time zone of an address."""
    with session_scope(ctx.sessions) as session:
        return session.scalars(select(Subscriber.timezone).where(Subscriber.email == email)).one()


def test_api_carries_the_time_zone(client: TestClient, editor: dict[str, str]) -> None:
    made = client.post(
        "/subscribers", json={"email": "tk@example.org", "timezone": "Asia/Tokyo"}, headers=editor
    )
    assert made.status_code == 201 and made.json()["timezone"] == "Asia/Tokyo"
    plain = client.post("/subscribers", json={"email": "u@example.org"}, headers=editor).json()
    assert plain["timezone"] == "UTC"  # MORNINGPOST_DEFAULT_TIMEZONE's default
    sub_id = made.json()["id"]
    moved = client.patch(
        f"/subscribers/{sub_id}", json={"timezone": "America/New_York"}, headers=editor
    )
    assert moved.status_code == 200 and moved.json()["timezone"] == "America/New_York"
    assert client.get(f"/subscribers/{sub_id}", headers=editor).json()["timezone"] == (
        "America/New_York"
    )
    listed = client.get("/subscribers", headers=editor).json()["items"]
    assert {s["timezone"] for s in listed} == {"America/New_York", "UTC"}


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "localtime", "../../etc/passwd", "utc"])
def test_unknown_time_zone_is_422_with_a_sentence(
    client: TestClient, editor: dict[str, str], zone: str
) -> None:
    r = client.post(
        "/subscribers", json={"email": "z@example.org", "timezone": zone}, headers=editor
    )
    assert r.status_code == 422
    assert "is not a known time zone" in r.json()["detail"]
    made = client.post("/subscribers", json={"email": "y@example.org"}, headers=editor).json()
    r = client.patch(f"/subscribers/{made['id']}", json={"timezone": zone}, headers=editor)
    assert r.status_code == 422 and "Europe/Berlin" in r.json()["detail"]


def test_default_time_zone_comes_from_settings(settings: Settings, editor: dict[str, str]) -> None:
    del editor
    assert load_settings(default_timezone="Europe/Berlin").default_timezone == "Europe/Berlin"
    with pytest.raises(ConfigError, match="MORNINGPOST_DEFAULT_TIMEZONE: unknown IANA time zone"):
        load_settings(default_timezone="Europe/Atlantis")


def test_csv_time_zone_column(client: TestClient, ctx: Context, editor: dict[str, str]) -> None:
    data = (
        "email,name,timezone\n"
        "ny@example.org,NY,America/New_York\n"
        "none@example.org,None,\n"
        "bad@example.org,Bad,Moon/Base\n"
    )
    r = client.post(
        "/subscribers/import",
        files={"file": ("list.csv", data.encode(), "text/csv")},
        headers=editor,
    )
    body = r.json()
    assert (body["imported"], body["rejected_count"]) == (2, 1), body
    assert (
        body["rejected"][0]["row"] == 4 and "not a known time zone" in body["rejected"][0]["reason"]
    )
    assert zone_of(ctx, "ny@example.org") == "America/New_York"
    assert zone_of(ctx, "none@example.org") == "UTC"
    # A later file moves an active reader to another zone and counts it as an update.
    with session_scope(ctx.sessions) as session:
        again = import_csv(
            session,
            io.StringIO("email,timezone\nny@example.org,Asia/Tokyo\n"),
            now=utcnow(),
            default_timezone="Europe/Paris",
        )
    assert again.updated == 1 and zone_of(ctx, "ny@example.org") == "Asia/Tokyo"


def test_cli_import_uses_the_default_time_zone(
    settings: Settings, ctx: Context, tmp_path: Path
) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text("email,timezone\nb@example.org,Europe/Berlin\nd@example.org,\n")
    result = run_cli(
        settings,
        "subscribers",
        "import",
        str(csv),
        cwd=tmp_path,
        MORNINGPOST_DEFAULT_TIMEZONE="Australia/Sydney",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["imported"] == 2
    assert zone_of(ctx, "b@example.org") == "Europe/Berlin"
    assert zone_of(ctx, "d@example.org") == "Australia/Sydney"


def test_sign_up_takes_the_browser_zone_and_falls_back(client: TestClient, ctx: Context) -> None:
    page = client.get("/subscribe")
    assert 'name="timezone"' in page.text and "/static/timezone.js" in page.text
    assert "<script>" not in page.text  # no inline script: the file fills the field
    assert client.get("/static/timezone.js").status_code == 200
    form = {"email": "la@example.org", "timezone": "America/Los_Angeles"}
    assert client.post("/subscribe", data=form).status_code == 200
    assert zone_of(ctx, "la@example.org") == "America/Los_Angeles"
    # An odd browser value must not cost a sign-up: the default applies.
    assert (
        client.post(
            "/subscribe", data={"email": "o@example.org", "timezone": "Nope/No"}
        ).status_code
        == 200
    )
    assert zone_of(ctx, "o@example.org") == "UTC"
    r = client.post("/subscribe", json={"email": "j@example.org", "timezone": "Asia/Kolkata"})
    assert r.status_code == 202 and zone_of(ctx, "j@example.org") == "Asia/Kolkata"


def test_preferences_change_the_zone(
    client: TestClient, ctx: Context, editor: dict[str, str]
) -> None:
    sub = client.post("/subscribers", json={"email": "p@example.org"}, headers=editor).json()
    token = ctx.tokens.preferences_token(sub["id"], nonce_of(ctx, sub["id"]))
    page = client.get(f"/preferences/{token}")
    assert re.search(r'<option value="UTC" selected>', page.text)
    assert 'value="Pacific/Auckland"' in page.text
    form = {"action": "save", "name": "", "pause_weeks": "0", "timezone": "Pacific/Auckland"}
    saved = client.post(f"/preferences/{token}", data=form)
    assert saved.status_code == 200 and zone_of(ctx, "p@example.org") == "Pacific/Auckland"
    bad = client.post(f"/preferences/{token}", data={**form, "timezone": "Nowhere"})
    assert bad.status_code == 422 and "not a known time zone" in bad.text
    assert zone_of(ctx, "p@example.org") == "Pacific/Auckland"


def test_links_follow_the_listen_address(settings: Settings) -> None:
    unset = Settings.model_construct(**settings.model_dump(exclude={"base_url"}))
    assert "base_url" not in unset.model_fields_set
    assert follow_listen_address(unset, "0.0.0.0", 9000) == "http://127.0.0.1:9000"
    assert Renderer(unset).subscribe_url == "http://127.0.0.1:9000/subscribe"
    again = Settings.model_construct(**settings.model_dump(exclude={"base_url"}))
    assert follow_listen_address(again, "::1", 9001) == "http://[::1]:9001"
    # Set explicitly (the test settings set it): it wins over --port.
    assert follow_listen_address(settings, "127.0.0.1", 9002) == "http://testserver"
