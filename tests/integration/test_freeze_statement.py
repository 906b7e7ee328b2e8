"""Freezing recipients: a first freeze never re-reads the table it fills; a later adds only new."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, func, select

from app.context import Context
from app.db import session_scope
from app.models import Delivery, Issue
from app.sends.store.ledger import freeze_recipients
from tests.helpers import add_subscribers


def _freeze_capturing(ctx: Context, issue_id: int) -> tuple[int, list[str]]:
    """Freeze for the issue and return the count and the INSERT statements sent."""
    seen: list[str] = []

    def capture(*args: Any) -> None:
        statement = str(args[2])
        if statement.lstrip().upper().startswith(("INSERT", "WITH")):
            seen.append(statement)

    engine = ctx.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        with session_scope(ctx.sessions) as session:
            count = freeze_recipients(session, issue_id)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return count, seen


def test_first_freeze_does_not_scan_deliveries_and_refreeze_adds_only_new(ctx: Context) -> None:
    """The first freeze has no NOT EXISTS over deliveries (PostgreSQL could plan it as a scan per
    reader over the rows being added); a second one keeps it and adds only new readers."""
    add_subscribers(ctx, 5)
    with session_scope(ctx.sessions) as session:
        issue = Issue(slug="freeze", subject="S", status="draft", blocks=[])
        session.add(issue)
        session.flush()
        issue_id = issue.id

    count, statements = _freeze_capturing(ctx, issue_id)
    assert count == 5
    (insert,) = statements
    assert "INSERT INTO deliveries" in insert
    assert "FROM deliveries" not in insert

    add_subscribers(ctx, 2, domain="later.example.org")
    count, statements = _freeze_capturing(ctx, issue_id)
    assert count == 2
    (insert,) = statements
    assert "FROM deliveries" in insert  # the NOT EXISTS that keeps one row per reader

    with session_scope(ctx.sessions) as session:
        rows = session.scalar(select(func.count()).where(Delivery.issue_id == issue_id))
        distinct = session.scalar(
            select(func.count(func.distinct(Delivery.subscriber_id))).where(
                Delivery.issue_id == issue_id
            )
        )
    assert rows == distinct == 7
