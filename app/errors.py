"""Domain errors; each carries the HTTP status one handler in app.main maps it to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Where a refused value sits, without the request part it came in ("body", "query").
_REQUEST_PARTS = ("body", "query")


def validation_message(errors: Iterable[Mapping[str, Any]]) -> str:
    """Return the words the API answers a refused value with: "field: why; field: why".

    One wording for every edge: the API's 422, the console's forms and the CLI's options.
    """
    problems = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in _REQUEST_PARTS)
        problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(problems) or "The request is not valid."


class DomainError(Exception):
    """Base for errors a service raises on purpose; `status` is the HTTP answer."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        """Return extra response headers (e.g. Retry-After)."""
        return {}


class InvalidInput(DomainError):
    """The request is well-formed but a value is unacceptable."""

    status = 422
    code = "invalid"


class NotFound(DomainError):
    """No such thing."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The thing exists but is in a state that forbids this."""

    status = 409
    code = "conflict"


class BadToken(DomainError):
    """A signed link was tampered with, expired or made with an unknown key."""

    status = 400
    code = "bad_token"


class Unauthorized(DomainError):
    """No valid editor token."""

    status = 401
    code = "unauthorized"


class TemplateError(DomainError):
    """An issue or template cannot be rendered."""

    status = 422
    code = "template_error"


class PreconditionFailed(DomainError):
    """The editor's copy is stale: the issue changed since they read it (If-Match)."""

    status = 412
    code = "precondition_failed"

    def __init__(self, message: str, etag: str | None = None) -> None:
        super().__init__(message)
        self.etag = etag

    @property
    def headers(self) -> dict[str, str]:
        """Return the current ETag, so a client can fetch and merge before it saves again."""
        return {"ETag": self.etag} if self.etag else {}
