"""Public pages answer GET and HEAD (uptime monitors, link and feed checkers send HEAD).

FastAPI's routes do not add HEAD to a GET route as Starlette's do. A HEAD gets the GET's status
and headers, and the server (uvicorn) sends no body. HEAD stays out of the API docs, where it
would only repeat each GET.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

F = TypeVar("F", bound=Callable[..., Any])


def page_route(router: APIRouter, path: str, **options: Any) -> Callable[[F], F]:
    """Register `path` for GET (documented) and for HEAD (the same endpoint, undocumented)."""

    def register(endpoint: F) -> F:
        router.add_api_route(path, endpoint, methods=["GET"], **options)
        options["include_in_schema"] = False
        router.add_api_route(path, endpoint, methods=["HEAD"], **options)
        return endpoint

    return register
