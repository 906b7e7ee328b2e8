"""The FastAPI application: routers, the in-process worker, one error handler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.apidocs import offline_docs_app
from app.bounces.routes import webhooks_router
from app.config import Settings
from app.console.setup import install_console
from app.context import Context, build_context
from app.delivery.engine import Worker
from app.delivery.mailer import make_mailer
from app.errors import DomainError
from app.issues.routes import router as issues_router
from app.subscribers.routes import router as subscribers_router
from app.suppressions.routes import suppressions_router
from app.web.pages import error_page, static_files
from app.web.routes import router as web_router

log = logging.getLogger("morningpost")

# Paths whose clients are programs: they always get JSON errors.
API_PREFIXES = ("/issues", "/subscribers", "/suppressions", "/healthz", "/webhooks")


def create_app(settings: Settings, *, context: Context | None = None) -> FastAPI:
    """Build the app; with settings.run_worker a delivery worker runs inside it."""
    ctx = context or build_context(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task: asyncio.Task[None] | None = None
        if settings.run_worker:
            task = asyncio.create_task(_start_worker(ctx, stop))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            if context is None:
                ctx.close()

    # /docs and /redoc load their scripts from this server, never a CDN (app.apidocs).
    app = offline_docs_app(
        title="Morning Post",
        summary="Self-hosted newsletter delivery",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.include_router(web_router)
    app.include_router(issues_router)
    app.include_router(subscribers_router)
    app.include_router(suppressions_router)
    app.include_router(webhooks_router)
    app.mount("/static", static_files(), name="static")
    install_console(app)  # the editor console under /editor/
    _install_error_handlers(app)
    return app


async def _start_worker(ctx: Context, stop: asyncio.Event) -> None:
    worker = Worker(ctx, make_mailer(ctx.settings))
    await worker.run(stop)


def _wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith(API_PREFIXES):
        return True
    content_type = request.headers.get("content-type", "")
    accept = request.headers.get("accept", "")
    if "application/json" in content_type:
        return True
    return "text/html" not in accept and "application/json" in accept


def _error(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    if _wants_json(request):
        response: Response = JSONResponse({"detail": message, "code": code}, status_code=status)
    else:
        response = error_page(request, status, message)
    response.headers.update(headers or {})
    return response


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        return _error(request, exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        message = "; ".join(problems) or "The request is not valid."
        return _error(request, 422, "invalid", message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = {404: "Nothing is here.", 405: "That method is not allowed here."}.get(
            exc.status_code, str(exc.detail)
        )
        return _error(request, exc.status_code, "http_error", message)
