"""The route class every router uses: who asks is checked before the body is read, bodies are
parsed off the event loop, and database work is admitted a few requests at a time.

Why (issue 17): a request's CPU work must never hold the event loop, a body must cost nothing
before its sender is known, and load must queue (or be told `503`, `Retry-After`) instead of
exhausting the connection pool into 500s. The admission gate counts requests doing database
work; it is as wide as `WEB_CONCURRENCY`, the thread pool a little wider and the database pool
wider still (see app.db.make_engine), so an admitted request never waits on a thread or a
connection held by one that is waiting for it. Coroutine endpoints (`/healthz`) skip the gate.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, request_response
from starlette.concurrency import run_in_threadpool

from app.errors import DomainError

# A request that waited this long for its turn is told to come back (503, Retry-After).
ADMISSION_WAIT_SECONDS = 20.0
RETRY_AFTER_SECONDS = 5
_CHECKED = "morningpost.checked"
_FUNCTION_STACK = "fastapi_function_astack"  # where FastAPI keeps "function"-scope dependencies

# Dependency → the same check as a plain function of the request, run before the body is read.
_FIRST_CHECKS: dict[Callable[..., Any], Callable[[Request], Any]] = {}


class Overloaded(DomainError):
    """Too many requests are doing database work; this one waited its turn long enough."""

    status = 503
    code = "overloaded"

    @property
    def headers(self) -> dict[str, str]:
        """Tell the client when to try again."""
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


def check_first(dependency: Callable[..., Any], check: Callable[[Request], Any]) -> None:
    """Register `check` to run (in a thread) before the body of any route using `dependency`."""
    _FIRST_CHECKS[dependency] = check


def checked(request: Request, dependency: Callable[..., Any]) -> tuple[bool, Any]:
    """Return (True, result) when `dependency`'s check already ran for this request."""
    done: dict[Callable[..., Any], Any] = request.scope.get(_CHECKED, {})
    if dependency in done:
        return True, done[dependency]
    return False, None


def configure_concurrency(app: FastAPI, concurrency: int) -> None:
    """Set the admission gate and the thread pool for `concurrency` requests at once."""
    app.state.admission = anyio.Semaphore(concurrency)
    # The checks before admission (a token or cookie looked up) take turns too: every thread
    # running Python competes with the event loop for the GIL, so threads are kept few.
    checks = max(2, concurrency // 2)
    app.state.check_limiter = anyio.CapacityLimiter(checks)
    anyio.to_thread.current_default_thread_limiter().total_tokens = concurrency + checks + 2


def _first_checks(dependant: Dependant) -> list[Callable[..., Any]]:
    found: list[Callable[..., Any]] = []
    for dep in dependant.dependencies:
        if dep.call in _FIRST_CHECKS and dep.call not in found:
            found.append(dep.call)
        found += [d for d in _first_checks(dep) if d not in found]
    return found


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body_off_loop(request: Request, parse_json: bool = True) -> None:
    """Read the body now (I/O only) and parse JSON in a thread; FastAPI reuses both."""
    media = _media_type(request)
    if media.startswith("multipart/"):
        return  # streamed and spooled to disk by the form parser, never held whole
    body = await request.body()
    json_media = media == "application/json" or media.endswith("+json")
    if parse_json and body and json_media:
        # Invalid JSON is left for FastAPI to parse again: it answers its own 422.
        with contextlib.suppress(ValueError):
            request._json = await run_in_threadpool(json.loads, body)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def guarded_handler(route: APIRoute, handler: Handler) -> Handler:
    """Wrap a route's handler: checks first, then the body, then the handler inside the gate."""
    checks = [(dep, _FIRST_CHECKS[dep]) for dep in _first_checks(route.dependant)]
    gated = not inspect.iscoroutinefunction(route.dependant.call)
    prepare = getattr(route, "prepare", None)
    if prepare is None:  # a plain APIRoute: JSON is parsed only where FastAPI will use it
        prepare = functools.partial(read_body_off_loop, parse_json=route.body_field is not None)

    async def guarded(request: Request) -> Response:
        limiter = getattr(request.app.state, "check_limiter", None)
        for dependency, check in checks:
            result = await anyio.to_thread.run_sync(check, request, limiter=limiter)
            request.scope.setdefault(_CHECKED, {})[dependency] = result
        try:
            await prepare(request)
            if not gated:
                return await handler(request)
            return await _admitted(request, handler)
        finally:
            # A form parsed by a dependency (CSRF, a sign-up) may hold spooled files.
            form = getattr(request, "_form", None)
            if form is not None:
                await form.close()

    return guarded


class GuardedRoute(APIRoute):
    """An APIRoute guarded as `guarded_handler` says; a subclass may parse other body types."""

    def get_route_handler(self) -> Handler:
        """Return FastAPI's handler, guarded."""
        return guarded_handler(self, super().get_route_handler())

    async def prepare(self, request: Request) -> None:
        """Read and parse the body before the handler (JSON only where FastAPI will use it)."""
        await read_body_off_loop(request, parse_json=self.body_field is not None)


def guard_routes(app: FastAPI) -> None:
    """Guard every route of `app`, included routers' too, not built as a GuardedRoute.

    Called once, before the first request: included routes build their handlers lazily from
    the original route (FastAPI's _IncludedRouter), which by then is a GuardedRoute.
    """
    for route in app.router.routes:
        if isinstance(route, APIRoute) and not isinstance(route, GuardedRoute):
            _make_guarded(route)
            route.app = request_response(route.get_route_handler())
    for route in _included_routes(app.router.routes):
        if not isinstance(route, GuardedRoute):
            _make_guarded(route)


def _included_routes(routes: list[Any]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for item in routes:
        original = getattr(item, "original_router", None)  # an included router
        if original is None:
            continue
        for route in original.routes:
            if isinstance(route, APIRoute):
                found.append(route)
        found += _included_routes(original.routes)
    return found


def _make_guarded(route: APIRoute) -> None:
    cls = type(route)
    route.__class__ = (
        GuardedRoute if cls is APIRoute else type(f"Guarded{cls.__name__}", (GuardedRoute, cls), {})
    )


async def _admitted(request: Request, handler: Handler) -> Response:
    gate: anyio.Semaphore | None = getattr(request.app.state, "admission", None)
    if gate is None:
        return await handler(request)
    try:
        with anyio.fail_after(ADMISSION_WAIT_SECONDS):
            await gate.acquire()
    except TimeoutError:
        raise Overloaded("The server is busy; please try again in a few seconds.") from None
    try:
        # The handler's "function"-scope dependencies (the database session) close here,
        # inside the gate, not after it: a request outside holds no connection.
        outer = request.scope.get(_FUNCTION_STACK)
        async with AsyncExitStack() as stack:
            request.scope[_FUNCTION_STACK] = stack
            try:
                return await handler(request)
            finally:
                request.scope[_FUNCTION_STACK] = outer
    finally:
        gate.release()
