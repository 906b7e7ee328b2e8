"""A claim reads its batch's ids once, whatever PostgreSQL knows of the readers' table.

A claim finds its batch's readers by one parameter (store/claims.py, `_among`). Written as
`id = ANY(CAST(:ids AS INTEGER[]))`, a plan made before the table had statistics (a fresh
install, a large import) scanned every reader and parsed the id list again for each one:
0.8 s a claim on 20,000 readers. This looks at the plan of the very statement a claim runs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import event, text

from app.context import Context
from app.db import session_scope
from app.models import utcnow
from app.sends.store import ledger
from tests.delivery_support import add_issue, send_now


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Return a plan node and every node under it."""
    return [plan, *(n for child in plan.get("Plans", []) for n in _nodes(child))]


def test_the_reader_lookup_reads_the_id_list_once_on_a_table_without_statistics(
    ctx: Context,
) -> None:
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's plans (SQLite's json_each lookup is by rowid, always)")
    with ctx.engine.begin() as conn:  # 3,000 readers just written: no statistics yet
        conn.execute(
            text(
                "INSERT INTO subscribers (email, email_hash, name, status, consent_source,"
                " created_at, status_changed_at, confirmed_at, token_nonce)"
                " SELECT 'r' || i || '@x.org', md5('r' || i), '', 'active', 'test',"
                " now(), now(), now(), left(md5(i::text), 8) FROM generate_series(1, 3000) AS i"
            )
        )
    send_now(ctx, add_issue(ctx))
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM subscribers" in statement:
            seen.append((statement, params))

    event.listen(ctx.engine, "before_cursor_execute", capture)
    try:
        with session_scope(ctx.sessions) as s:
            assert len(ledger.claim_batch(s, "w1", 1000, utcnow(), 60)) == 1000
    finally:
        event.remove(ctx.engine, "before_cursor_execute", capture)
    (statement, params), *_ = [(st, p) for st, p in seen if "subscribers.token_nonce" in st]
    with ctx.engine.connect() as conn:
        raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, params).scalar()
    assert raw is not None
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    readers = [n for n in _nodes(plan) if n.get("Relation Name") == "subscribers"]
    assert readers, plan
    for node in readers:
        # Never a filter holding the id list: as a parameter, it is cast (the list parsed)
        # again for every reader the scan passes.
        assert "ANY" not in node.get("Filter", ""), node
