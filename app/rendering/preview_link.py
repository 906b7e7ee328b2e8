"""Signed preview links: "Read on the web" in a test copy opens the issue before it is sent.

A token names one issue, is signed for this purpose only (its own salt) and expires.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.errors import BadToken
from app.rendering.compile import CompiledEmail

PREVIEW_SALT = "morningpost.issue-preview"
PREVIEW_MAX_AGE = 14 * 24 * 3600  # a test copy sits in an inbox for a while
GONE = "This preview link is not valid any more; send a new test copy."


def _serializer(keys: list[str]) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(keys, salt=PREVIEW_SALT)


def preview_token(keys: list[str], issue_id: int, born: datetime | None = None) -> str:
    """Return a token that opens the web preview of one issue (made at `born`)."""
    data: dict[str, int | str] = {"issue": issue_id}
    if born is not None:
        data["born"] = _stamp(born)
    return str(_serializer(keys).dumps(data))


def read_preview_token(
    keys: list[str], token: str, max_age: int = PREVIEW_MAX_AGE
) -> tuple[int, str | None]:
    """Return the issue a preview token names and when it was made (None in older tokens).

    A tampered or old token is BadToken. The caller checks the moment against the issue's
    own: SQLite gives a deleted draft's id to the next issue, which the link must not open.
    """
    try:
        data = _serializer(keys).loads(token, max_age=max_age)
    except BadSignature:
        raise BadToken(GONE) from None
    issue_id = data.get("issue") if isinstance(data, dict) else None
    born = data.get("born") if isinstance(data, dict) else None
    if not isinstance(issue_id, int) or not (born is None or isinstance(born, str)):
        raise BadToken(GONE)
    return issue_id, born


def same_issue(born: str | None, created_at: datetime) -> bool:
    """Tell whether a preview token's moment is this issue's (tokens without one: yes)."""
    return born is None or born == _stamp(created_at)


def _stamp(moment: datetime) -> str:
    # Naive or aware as the database hands it back; microseconds as stored.
    return moment.replace(tzinfo=None).isoformat()


def with_preview_link(
    compiled: CompiledEmail,
    base_url: str,
    slug: str,
    keys: list[str],
    issue_id: int,
    *,
    born: datetime | None = None,
) -> CompiledEmail:
    """Point a test copy's "Read on the web" at the signed preview (the archive has no page yet)."""
    archive = f"{base_url}/archive/{slug}"
    preview = f"{base_url}/preview/{preview_token(keys, issue_id, born)}"
    return replace(
        compiled,
        html=compiled.html.replace(f'"{archive}"', f'"{preview}"'),
        text=compiled.text.replace(archive, preview),
    )
