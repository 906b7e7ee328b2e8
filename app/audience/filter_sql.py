"""Compile a parsed filter into a SQLAlchemy condition on Subscriber.

Every value from the filter is a bound parameter and every name is checked against a fixed
pattern: no text from the filter ever reaches SQL as SQL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import ColumnElement, and_, exists, false, not_, or_, select, true

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


def _like_pattern(glob: str) -> str:
    """Turn a `*` pattern into a LIKE pattern with `\\` as the escape character."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _text(node: Text) -> ColumnElement[bool]:
    column = {"timezone": Subscriber.timezone, "email": Subscriber.email, "name": Subscriber.name}[
        node.field
    ]
    value = node.value.lower() if node.field == "email" else node.value
    if node.op == "=":
        return column == value
    if node.op == "!=":
        return column != value
    if node.op == "contains":
        return column.contains(value, autoescape=True)
    return column.like(_like_pattern(value), escape="\\")


def _attr(node: Attr) -> ColumnElement[bool]:
    if not ATTRIBUTE_NAME.fullmatch(node.name):
        raise FilterError(0, "an attribute name of letters, digits and _", repr(node.name))
    element = Subscriber.attributes[node.name]
    if node.op == "exists":
        return element.as_string().is_not(None)
    value = node.value
    if isinstance(value, bool):
        column: ColumnElement[object] = element.as_boolean()
    elif isinstance(value, float):
        column = element.as_float()
    else:
        column = element.as_string()
    if node.op == "contains":
        return element.as_string().contains(str(value), autoescape=True)
    compare = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        ">": column.__gt__,
        "<=": column.__le__,
        ">=": column.__ge__,
    }[node.op]
    result: ColumnElement[bool] = compare(value)
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
