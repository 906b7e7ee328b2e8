"""Click counts: rewrite an issue's HTML links to signed BASE_URL/l/<token> redirects.

Done once per issue at compile time. A token names the issue (its slug: sent issues never
change it) and the link (its index and URL), never the reader; the URL is inside the signed
token, so the redirect cannot be turned into an open redirect and needs no lookup table.
With MORNINGPOST_TRACK_READERS=true (an explicit opt-in) each link also carries the reader's
preferences token, filled in per recipient like the list links: /l/<token>/<reader>.
Links to our own site (unsubscribe, preferences, the web version, the sign-up page), mailto:
and anything not http(s) are left alone, and so is the text part.
"""

from __future__ import annotations

import html
import re

from itsdangerous import BadSignature, URLSafeSerializer

from app.config import Settings
from app.errors import BadToken
from app.rendering import placeholders

CLICK_SALT = "morningpost.click"
URL_MAX = 2000
TOKEN_MAX = 900  # a longer token (a very long URL) keeps the link as it is

# An <a> tag's href, in either quote style; attribute values never hold a raw quote of their kind.
_HREF = re.compile(r"""(<a\b[^>]*?\shref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


class ClickTokens:
    """Sign and read click tokens: (issue slug, link index, URL), one salt of their own."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._serializer = URLSafeSerializer(list(keys), salt=CLICK_SALT)

    def make(self, slug: str, index: int, url: str) -> str:
        """Return the token of one link of one issue."""
        return str(self._serializer.dumps([slug, index, url]))

    def read(self, token: str) -> tuple[str, int, str]:
        """Return (slug, index, url) or raise BadToken."""
        try:
            data = self._serializer.loads(token)
        except (BadSignature, UnicodeError, ValueError):
            raise BadToken("This link is not valid.") from None
        ok = (
            isinstance(data, list)
            and len(data) == 3
            and isinstance(data[0], str)
            and isinstance(data[1], int)
            and isinstance(data[2], str)
            and is_trackable(data[2])
        )
        if not ok:
            raise BadToken("This link is not valid.")
        return data[0], data[1], data[2]


def is_trackable(url: str) -> bool:
    """Tell whether a URL may be redirected to: http(s), a host, no line breaks, not too long."""
    lowered = url[:8].lower()
    return (
        lowered.startswith(("http://", "https://"))
        and len(url) <= URL_MAX
        and not any(ch in url for ch in "\r\n\t")
        and len(url.split("://", 1)[1].split("/", 1)[0]) > 0
    )


def rewrite_links(page: str, settings: Settings, slug: str) -> str:
    """Return the HTML with its outside http(s) links pointing at BASE_URL/l/<token>."""
    if not settings.click_counts or not settings.secret_keys:
        return page
    # Opt-in per-reader clicks: the reader's preferences token (a placeholder filled per
    # recipient, like the list links) follows the link token in the path.
    reader = f"/{placeholders.PREFERENCES_TOKEN}" if settings.track_readers else ""
    tokens = ClickTokens(settings.secret_keys)
    own = settings.base_url.rstrip("/") + "/"
    index: dict[str, int] = {}

    def replace(match: re.Match[str]) -> str:
        url = html.unescape(match.group(3)).strip()
        if not is_trackable(url) or url.startswith(own) or url == own.rstrip("/"):
            return match.group(0)
        n = index.setdefault(url, len(index))
        token = tokens.make(slug, n, url)
        if len(token) > TOKEN_MAX:
            return match.group(0)
        quote = match.group(2)
        return f"{match.group(1)}{quote}{own}l/{token}{reader}{quote}"

    return _HREF.sub(replace, page)
