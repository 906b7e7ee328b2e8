"""Where the console sends an editor after sign-in: a local /editor/ page only, never away."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from starlette.requests import Request

HOME = "/editor/"
NEXT_MAX = 500
# Pages whose form holds an issue's Markdown: text kept from them comes back into them.
NEW_FORM = "/editor/issues/new"
EDIT_FORM = re.compile(r"^/editor/issues/(\d+)/edit$")
_FORM_POSTS = {"/editor/issues": NEW_FORM}
_EDIT_POST = re.compile(r"^/editor/issues/(\d+)/(edit|autosave)$")
_BLOCKS_POST = re.compile(r"^/editor/issues/(\d+)/blocks$")


def safe_next(value: str | None) -> str:
    """Return `value` if it is a path under /editor/ on this site, else the dashboard."""
    if not value or len(value) > NEXT_MAX or "\\" in value:
        return HOME
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return HOME  # control characters and spaces: browsers strip some, so refuse them all
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return HOME
    path = parts.path
    if not (path == HOME or path.startswith(HOME)) or "/../" in path or path.endswith("/.."):
        return HOME
    if path in ("/editor/login", "/editor/logout") or path.endswith((".json", ".html", ".csv")):
        return HOME  # not a page to land on: a poll, a framed preview or a download
    return path + (f"?{parts.query}" if parts.query else "")


def login_url(next_path: str) -> str:
    """Return the sign-in page that comes back to `next_path`."""
    target = safe_next(next_path)
    if target == HOME:
        return "/editor/login"
    return f"/editor/login?next={quote(target, safe='/')}"


def asked_for(request: Request) -> str:
    """Return the page a request was for (its path and query)."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def form_page_of(path: str, referer: str | None) -> str:
    """Return the page whose form a refused post came from (to return to it after sign-in)."""
    if path in _FORM_POSTS:
        return _FORM_POSTS[path]
    found = _EDIT_POST.match(path)
    if found:
        return f"/editor/issues/{found.group(1)}/edit"
    if referer:
        parts = urlsplit(referer)
        local = parts.path + (f"?{parts.query}" if parts.query else "")
        return safe_next(local)
    return HOME


def is_markdown_form_post(path: str) -> bool:
    """Tell whether `path` is where a Markdown editor form posts (a new draft or an edit)."""
    return path in _FORM_POSTS or EDIT_FORM.match(path) is not None


def blocks_form_of(path: str) -> str | None:
    """Return the Markdown editor of the issue whose block editor posts to `path`, if it is one."""
    found = _BLOCKS_POST.match(path)
    return f"/editor/issues/{found.group(1)}/edit" if found else None


def kept_text_target(next_path: str) -> tuple[bool, int | None]:
    """Tell whether text kept for `next_path` belongs to a new draft or issue N's editor."""
    path = urlsplit(next_path).path
    if path == NEW_FORM:
        return True, None
    found = EDIT_FORM.match(path)
    if found:
        return True, int(found.group(1))
    return False, None
