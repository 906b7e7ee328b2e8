"""Signed preview links: "Read on the web" in a test copy opens the issue before it is sent.

A token names one issue, is signed for this purpose only (its own salt) and expires.
"""

from __future__ import annotations

from dataclasses import replace

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.errors import BadToken
from app.rendering.compile import CompiledEmail

PREVIEW_SALT = "morningpost.issue-preview"
PREVIEW_MAX_AGE = 14 * 24 * 3600  # a test copy sits in an inbox for a while


def _serializer(keys: list[str]) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(keys, salt=PREVIEW_SALT)


def preview_token(keys: list[str], issue_id: int) -> str:
    """Return a token that opens the web preview of one issue."""
    return str(_serializer(keys).dumps({"issue": issue_id}))


def read_preview_token(keys: list[str], token: str, max_age: int = PREVIEW_MAX_AGE) -> int:
    """Return the issue a preview token names; a tampered or old token is BadToken."""
    try:
        data = _serializer(keys).loads(token, max_age=max_age)
    except BadSignature:
        raise BadToken("This preview link is not valid any more; send a new test copy.") from None
    issue_id = data.get("issue") if isinstance(data, dict) else None
    if not isinstance(issue_id, int):
        raise BadToken("This preview link is not valid any more; send a new test copy.")
    return issue_id


def with_preview_link(
    compiled: CompiledEmail, base_url: str, slug: str, keys: list[str], issue_id: int
) -> CompiledEmail:
    """Point a test copy's "Read on the web" at the signed preview (the archive has no page yet)."""
    archive = f"{base_url}/archive/{slug}"
    preview = f"{base_url}/preview/{preview_token(keys, issue_id)}"
    return replace(
        compiled,
        html=compiled.html.replace(f'"{archive}"', f'"{preview}"'),
        text=compiled.text.replace(archive, preview),
    )
