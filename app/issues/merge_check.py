"""The pre-send check of merge tags: a tag without a default that some recipients cannot fill.

`{{ attr.x }}` without a default shows nothing to a reader who lacks `x` (or whose `x` is
blank): when any recipient lacks it, that is an error naming how many ("37 readers have no
`company`"), fixed by adding a default. `{{ name }}` without a default is only a warning:
readers often have no name, and the editor may want nothing there.

The recipients are the issue's send audience: its newsletter's readers who may receive it now,
narrowed by the send's segment or filter when one is known (a scheduled send keeps it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.audience.segments import send_audience
from app.issues.check import Finding
from app.models import Issue, Subscriber
from app.rendering import merge_tags
from app.sends.store.ledger import send_recipients


def _bare_tags(blocks: list[dict[str, Any]]) -> dict[str, int]:
    """Return each key used somewhere without a default, with the first block (from 1) using it."""
    bare: dict[str, int] = {}
    for number, block in enumerate(blocks, start=1):
        for path, text in merge_tags.text_fields(block):
            if "{{" not in text or merge_tags.is_url_field(path):
                continue  # an address is never filled (a tag there is refused on save)
            try:
                tags = [tag for _, _, tag in merge_tags.scan(text)]
            except merge_tags.MergeTagError:
                continue  # saved before tags were checked: it renders as written
            for tag in tags:
                if tag.default is None and tag.key != merge_tags.NEWSLETTER:
                    bare.setdefault(tag.key, number)
    return bare


def _blank(value: ColumnElement[Any] | InstrumentedAttribute[str]) -> ColumnElement[bool]:
    return or_(value.is_(None), func.trim(value) == "")


def merge_findings(
    session: Session, issue: Issue, now: datetime, audience_filter: str | None = None
) -> list[Finding]:
    """Return an error per `attr.x` tag without a default that some recipients lack."""
    bare = _bare_tags(list(issue.blocks or []))
    if not bare:
        return []
    keys = sorted(bare)
    missing = [
        _blank(Subscriber.name)
        if key == "name"
        else _blank(Subscriber.attributes[key.removeprefix("attr.")].as_string())
        for key in keys
    ]
    # The freeze's own clause: the readers counted are the readers the send takes.
    audience = send_recipients(now, send_audience(audience_filter, now, issue.newsletter_id))
    # One pass over the audience, however many tags.
    counts = session.execute(
        select(*[func.coalesce(func.sum(case((m, 1), else_=0)), 0) for m in missing]).where(
            audience
        )
    ).one()
    found: list[Finding] = []
    for key, count in zip(keys, counts, strict=True):
        if not count:
            continue
        readers = f"{count} reader{'s' if count != 1 else ''}"
        if key == "name":
            found.append(
                Finding(
                    "warning",
                    "merge_tag_no_name",
                    f"{readers} {'has' if count == 1 else 'have'} no name: {{{{ name }}}} shows "
                    'nothing for them. Add a default, e.g. {{ name | "there" }}.',
                    block=bare[key],
                )
            )
            continue
        attr = key.removeprefix("attr.")
        found.append(
            Finding(
                "error",
                "merge_tag_no_default",
                f"{readers} {'has' if count == 1 else 'have'} no `{attr}`: {{{{ {key} }}}} "
                f'would show nothing for them. Add a default, e.g. {{{{ {key} | "…" }}}}.',
                block=bare[key],
            )
        )
    return found
