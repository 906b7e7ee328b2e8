"""Compile a parsed filter into a SQLAlchemy condition on Subscriber.

Every value from the filter is a bound parameter and every name is checked against a fixed
pattern: no text from the filter ever reaches SQL as SQL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    SQLColumnExpression,
    and_,
    case,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.audience.filter_parse import (
    Attr,
    ClickedWithin,
    FilterError,
    Joined,
    Node,
    Not,
    Tag,
    Text,
    parse_filter,
)
from app.models import Click, Subscriber, SubscriberTag

ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _escape_like(text: str) -> str:
    """Escape LIKE's own wildcards with `\\` so the text matches only itself."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_pattern(glob: str) -> str:
    """Turn a `*` pattern into a LIKE pattern with `\\` as the escape character."""
    return _escape_like(glob).replace("*", "%")


def _matches(column: SQLColumnExpression[str], op: str, value: str) -> ColumnElement[bool]:
    """Match `~` (a `*` pattern) or `contains` ignoring case, alike on both databases.

    LIKE ignores ASCII case on SQLite but not on PostgreSQL; folding both sides makes an
    editor's "contains ADA" find "Ada" on either.
    """
    folded = value.lower()
    pattern = _like_pattern(folded) if op == "~" else f"%{_escape_like(folded)}%"
    return func.lower(column).like(pattern, escape="\\")


def _text(node: Text) -> ColumnElement[bool]:
    column = {"timezone": Subscriber.timezone, "email": Subscriber.email, "name": Subscriber.name}[
        node.field
    ]
    value = node.value.lower() if node.field == "email" else node.value
    if node.op == "=":
        return column == value
    if node.op == "!=":
        return column != value
    return _matches(column, node.op, value)


# What json_type (SQLite) calls each kind of value that json_typeof (PostgreSQL) names.
_SQLITE_TYPES = {"number": ("integer", "real"), "string": ("text",), "boolean": ("true", "false")}


class _PerDialect(FunctionElement[bool]):
    """One of two conditions, picked when the statement is compiled: SQLite's or PostgreSQL's.

    Both are clauses of this element, so the statement cache keys on both.
    """

    type = Boolean()
    inherit_cache = True


@compiles(_PerDialect)
def _sqlite_form(element: _PerDialect, compiler: SQLCompiler, **kw: Any) -> str:
    sqlite_form, _ = element.clauses
    return compiler.process(sqlite_form, **kw)


@compiles(_PerDialect, "postgresql")
def _postgresql_form(element: _PerDialect, compiler: SQLCompiler, **kw: Any) -> str:
    _, postgresql_form = element.clauses
    return compiler.process(postgresql_form, **kw)


def _is_kind(name: str, kind: str) -> ColumnElement[bool]:
    """Tell whether an attribute holds a value of this kind: "number", "string" or "boolean".

    Never NULL (an absent attribute is false), so a comparison guarded by it is true or false
    and `not` is its exact opposite.
    """
    sqlite_type = func.json_type(Subscriber.attributes, f'$."{name}"')
    # The column is JSON (not JSONB) on PostgreSQL, hence json_typeof.
    postgresql_type = func.json_typeof(Subscriber.attributes[name])
    return _PerDialect(
        func.coalesce(sqlite_type, "").in_(_SQLITE_TYPES[kind]),
        func.coalesce(postgresql_type, "") == kind,
    )


def _attr(node: Attr) -> ColumnElement[bool]:
    if not ATTRIBUTE_NAME.fullmatch(node.name):
        raise FilterError(0, "an attribute name of letters, digits and _", repr(node.name))
    element = Subscriber.attributes[node.name]
    if node.op == "exists":
        return element.as_string().is_not(None)
    value = node.value
    if node.op == "contains":
        kind, typed = "string", element.as_string()
    elif isinstance(value, bool):
        kind, typed = "boolean", element.as_boolean()
    elif isinstance(value, float):
        kind, typed = "number", element.as_float()
    else:
        kind, typed = "string", element.as_string()
    is_kind = _is_kind(node.name, kind)
    # Only a value of the compared kind is cast and compared; any other kind does not match.
    # PostgreSQL raises on CAST('unlimited' AS FLOAT) (SQLite reads 0), and it may evaluate
    # either side of an AND first: only CASE fixes the order.
    column: ColumnElement[Any] = case((is_kind, typed))
    if node.op == "contains":
        return and_(is_kind, _matches(column, "contains", str(value)))
    compare = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        ">": column.__gt__,
        "<=": column.__le__,
        ">=": column.__ge__,
    }[node.op]
    result: ColumnElement[bool] = and_(is_kind, compare(value))
    return result


def _joined(node: Joined) -> ColumnElement[bool]:
    start = datetime.combine(node.day, time(), tzinfo=UTC)
    end = start + timedelta(days=1)
    created = Subscriber.created_at
    return {
        "=": and_(created >= start, created < end),
        "<": created < start,
        "<=": created < end,
        ">": created >= end,
        ">=": created >= start,
    }[node.op]


def compile_node(node: Node, now: datetime) -> ColumnElement[bool]:
    """Return the condition on Subscriber that a parsed filter means."""
    if isinstance(node, Tag):
        return exists(
            select(SubscriberTag.subscriber_id).where(
                SubscriberTag.subscriber_id == Subscriber.id, SubscriberTag.tag == node.tag
            )
        )
    if isinstance(node, Attr):
        return _attr(node)
    if isinstance(node, Joined):
        return _joined(node)
    if isinstance(node, Text):
        return _text(node)
    if isinstance(node, ClickedWithin):
        return exists(
            select(Click.id).where(
                Click.subscriber_id == Subscriber.id,
                Click.clicked_at >= now - node.period,
                Click.scanner.is_(False),
            )
        )
    if isinstance(node, Not):
        return not_(compile_node(node.inner, now))
    parts = [compile_node(item, now) for item in node.items]
    if node.op == "and":
        return and_(true(), *parts)
    return or_(false(), *parts)


def compile_filter(source: str, now: datetime) -> ColumnElement[bool]:
    """Parse and compile a filter; FilterError (422) when it does not parse."""
    return compile_node(parse_filter(source), now)
