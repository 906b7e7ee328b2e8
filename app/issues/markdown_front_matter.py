"""The front matter of a Markdown issue: a bounded YAML block of subject, preheader, slug, date."""

from __future__ import annotations

import yaml

from app.issues.markdown_grammar import FRONT_MATTER_KEYS, _fail

# subject, preheader, slug and date, with room for comments and folded lines.
FRONT_MATTER_MAX_LINES = 30
FRONT_MATTER_MAX_CHARS = 4096


def _front_matter(lines: list[str]) -> tuple[dict[str, str], dict[str, int], int]:
    """Return (values, line of each key, index of the first line after the front matter)."""
    first = lines[0].lstrip("\ufeff").rstrip() if lines else ""
    if first != "---":
        raise _fail(
            1,
            "a Markdown issue starts with YAML front matter: a line '---', "
            "'subject: …', then '---' again",
        )
    # Bounded before YAML reads it: a handful of short keys is all the front matter holds.
    last = min(len(lines), FRONT_MATTER_MAX_LINES + 2)
    end = next((i for i in range(1, last) if lines[i].rstrip() in ("---", "...")), None)
    if end is None and last < len(lines):
        raise _fail(
            FRONT_MATTER_MAX_LINES + 2,
            f"the front matter is longer than {FRONT_MATTER_MAX_LINES} lines "
            "(or never closed by '---')",
        )
    if end is None:
        raise _fail(1, "the front matter opened by '---' is never closed by another '---'")
    source = "\n".join(lines[1:end])
    if len(source) > FRONT_MATTER_MAX_CHARS:
        raise _fail(2, f"the front matter is longer than {FRONT_MATTER_MAX_CHARS} characters")
    try:
        # BaseLoader keeps every value a string: safe_load would turn `date: 2026-03-03` into a
        # date and `subject: Yes` into True. It builds no objects, so it is as safe.
        raw = yaml.load(source, Loader=yaml.BaseLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = mark.line + 2 if mark is not None else 2
        problem = getattr(exc, "problem", None) or str(exc)
        raise _fail(at, f"the front matter is not valid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _fail(2, "the front matter must be 'key: value' lines (subject, preheader, …)")
    where: dict[str, int] = {}
    for number in range(1, end):
        key = lines[number].split(":", 1)[0].strip()
        if key in raw and key not in where:
            where[key] = number + 1
    values: dict[str, str] = {}
    for key, value in raw.items():
        at = where.get(key, 2)
        if key not in FRONT_MATTER_KEYS:
            raise _fail(
                at, f"unknown front matter key {key!r} (one of {', '.join(FRONT_MATTER_KEYS)})"
            )
        if not isinstance(value, str):
            raise _fail(at, f"{key} must be a single value, not a list or a mapping")
        values[key] = value
    if not values.get("subject", "").strip():
        raise _fail(
            end + 1 if "subject" not in where else where["subject"],
            "the front matter needs a subject: line",
        )
    return values, where, end + 1
