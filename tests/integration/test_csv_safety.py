"""Issue 9, item 9 (CSV half): an import is all or nothing per file and names the real line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.config import Settings
from app.context import Context
from app.db import session_scope
from app.errors import InvalidInput
from app.models import Subscriber, utcnow
from app.subscribers.csv_import import import_csv
from tests.cli_support import run_cli


def _count(ctx: Context) -> int:
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count(Subscriber.id))) or 0)


def _file(bad: bytes) -> bytes:
    # Line 1 the header, line 2..3 one record with a line break inside a quoted name, then
    # 2,000 more rows; the bad bytes come on line 2,004.
    lines = [b"email,name", b'multi@example.org,"Two', b'lines"']
    lines += [f"bulk{i}@example.org,Bulk {i}".encode() for i in range(2000)]
    lines += [b"late@example.org,Caf" + bad, b"after@example.org,After"]
    return b"\r\n".join(lines) + b"\r\n"


@pytest.mark.parametrize("bad", [b"\xff\xfe", b"\x00"])
def test_a_bad_byte_after_2000_rows_is_a_422_naming_its_line_and_commits_nothing(
    client: TestClient, ctx: Context, editor: dict[str, str], bad: bytes
) -> None:
    r = client.post(
        "/subscribers/import", files={"file": ("big.csv", io.BytesIO(_file(bad)))}, headers=editor
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("Line 2004:")
    assert _count(ctx) == 0


def test_the_service_names_the_line_and_the_transaction_keeps_nothing(ctx: Context) -> None:
    commits: list[int] = []
    with pytest.raises(InvalidInput, match="Line 2004"), session_scope(ctx.sessions) as s:
        import_csv(
            s,
            io.BytesIO(_file(b"\xff")),
            now=utcnow(),
            chunk_size=500,
            on_chunk=lambda: commits.append(1),
        )
    assert _count(ctx) == 0


def test_rejected_rows_are_named_by_their_line(ctx: Context) -> None:
    data = b'email,name\n"two\nlines",X\nok@example.org,Ok\nnot-an-address,X\n'
    with session_scope(ctx.sessions) as s:
        summary = import_csv(s, io.BytesIO(data), now=utcnow())
    assert summary.imported == 1
    assert [r.row for r in summary.rejected] == [2, 5]


def test_the_cli_import_is_all_or_nothing_too(
    settings: Settings, ctx: Context, tmp_path: Path
) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(_file(b"\xff"))
    result = run_cli(settings, "subscribers", "import", str(path))
    assert result.returncode == 1 and "Line 2004" in result.stderr
    assert _count(ctx) == 0


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cells(text: str) -> list[str]:
    import csv

    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def test_every_csv_export_neutralises_formulas_in_every_column(
    ctx: Context, client: TestClient, editor: dict[str, str]
) -> None:
    """Issue 17 item 10: the email column of an export was left raw (`=cmd|…@mailhost.net`)."""
    from tests.console_support import add_account, sign_in

    hostile = ["=cmd|'/Ccalc'!A0@mailhost.net", "+1@mailhost.net", "-x@mailhost.net"]
    for n, email in enumerate(hostile):
        r = client.post(
            "/subscribers",
            json={"email": email, "name": ["@SUM(1)", "\tTab", "=2+3"][n], "status": "active"},
            headers=editor,
        )
        assert r.status_code == 201, r.text
        client.post("/suppressions", json={"email": email, "reason": "manual"}, headers=editor)
    add_account(ctx)
    sign_in(client)
    exports = {
        url: client.get(url, headers=editor)
        for url in (
            "/editor/subscribers/export.csv",
            "/editor/suppressions/export.csv",
            "/suppressions/export.csv",
        )
    }
    for url, resp in exports.items():
        assert resp.status_code == 200, (url, resp.text)
        raw = [c for c in _cells(resp.text) if c]
        assert not [c for c in raw if c.startswith(FORMULA_STARTS)], (url, raw)
    people = exports["/editor/subscribers/export.csv"].text
    # Neutralised with a leading apostrophe, the text itself kept.
    assert "'=cmd|'/ccalc'!a0@mailhost.net" in people and "'+1@mailhost.net" in people


def test_an_export_imports_again_as_it_was() -> None:
    from app.csvsafe import neutralise, restore

    for value in ("=cmd|'/c'!a0@mailhost.net", "+1", "-", "@x", "\tx", "'=kept", "plain", ""):
        assert restore(neutralise(value)) == value
