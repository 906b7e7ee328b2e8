"""The FastAPI application: routers, the in-process worker, one error handler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.pool import NullPool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.apidocs import offline_docs_app
from app.audience.newsletter_routes import newsletters_router
from app.audience.routes import segments_router, tags_router
from app.automations.ab_routes import router as ab_router
from app.automations.feeds import run_feed_poller
from app.automations.routes import poll_router as feed_poll_router
from app.automations.routes import router as feeds_router
from app.automations.scheduler import run_automations
from app.automations.sequences.routes import router as sequences_router
from app.bounces.mailbox import run_bounce_mailbox
from app.bounces.routes import webhooks_router
from app.clicks.routes import clicks_router
from app.config import Settings
from app.console.setup import install_console
from app.context import Context, build_context
from app.db import READ_ONLY, make_engine
from app.delivery import build_worker
from app.errors import DomainError, validation_message
from app.issues.routes import router as issues_router
from app.media.routes import media_api_router, media_files_router
from app.metrics.routes import metrics_router
from app.providers.routes import providers_router
from app.relays.routes import relays_router
from app.routing import Overloaded, configure_concurrency, guard_routes
from app.sends.worker import DatabaseUnavailable
from app.subscribers.routes import router as subscribers_router
from app.suppressions.routes import suppressions_router
from app.web.cache import CachedPages, PageCache, Recent
from app.web.headers import SecurityHeaders, TrustedHosts
from app.web.limits import RequestLimits
from app.web.newsletter_pages import router as newsletter_pages_router
from app.web.pages import error_page, static_files
from app.web.preferences import router as preferences_router
from app.web.preview import router as preview_router
from app.web.probes import router as probes_router
from app.web.reading import router as reading_router
from app.web.signup import router as signup_router
from app.web.stamp import ping
from app.web.unsubscribe import router as unsubscribe_router
from app.webhooks.routes import outbound_webhooks_router
from app.webhooks.sender import run_webhook_sender

log = logging.getLogger("morningpost")

# How long a successful database check answers /healthz.
HEALTH_SECONDS = 1.0
# Paths whose clients are programs: they always get JSON errors.
API_PREFIXES = (
    "/issues",
    "/subscribers",
    "/suppressions",
    "/segments",
    "/feeds",
    "/sequences",
    "/healthz",
    "/webhooks",
    "/media",
)


def create_app(settings: Settings, *, context: Context | None = None) -> FastAPI:
    """Build the app; with settings.run_worker a delivery worker runs inside it."""
    ctx = context or build_context(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_concurrency(app, settings.web_concurrency)
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
            health = getattr(app.state, "health", None)
            if health is not None:
                health.close()
            if context is None:
                ctx.close()

    # /docs and /redoc load their scripts from this server, never a CDN (app.apidocs).
    app = offline_docs_app(
        title="Morning Post",
        summary="Self-hosted newsletter delivery",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    # Public pages from memory until an issue changes; /healthz from a check a second old.
    app.state.pages = PageCache(ctx.engine, settings)
    app.state.health_engine, app.state.health = _health_check(ctx)
    app.include_router(probes_router)  # /healthz, /robots.txt: matched first, asked most
    app.include_router(reading_router)  # home, archive, feed: before any catch-all path
    app.include_router(newsletter_pages_router)  # the same pages of each newsletter, /n/<slug>
    app.include_router(signup_router)  # the forms: sign-up and confirm, leaving, preferences
    app.include_router(unsubscribe_router)
    app.include_router(preferences_router)
    app.include_router(preview_router)  # signed previews of unsent issues (test copies)
    app.include_router(issues_router)
    app.include_router(tags_router)  # POST /subscribers/tags before /subscribers/{id}
    app.include_router(subscribers_router)
    app.include_router(segments_router)
    app.include_router(newsletters_router)
    app.include_router(feeds_router)
    app.include_router(feed_poll_router)
    app.include_router(sequences_router)
    app.include_router(ab_router)
    app.include_router(suppressions_router)
    app.include_router(webhooks_router)
    app.include_router(providers_router)
    app.include_router(relays_router)
    # Insight and integrations: /metrics, outbound webhooks, click redirects.
    app.include_router(metrics_router)
    app.include_router(outbound_webhooks_router)
    app.include_router(clicks_router)
    app.include_router(media_api_router)  # images: upload (editors), files (everyone)
    app.include_router(media_files_router)
    app.mount("/static", static_files(), name="static")
    install_console(app)  # the editor console under /editor/
    # Every route: who asks is checked before the body is read, bodies are parsed off the
    # event loop, and database work is admitted WEB_CONCURRENCY requests at a time (issue 17).
    guard_routes(app)
    _install_error_handlers(app)
    # Hardening (issue 9): body limits while streaming, trusted hosts, frame/CSP headers.
    # Innermost, after every check: cached pages and a healthy /healthz before routing.
    app.add_middleware(CachedPages, cache=app.state.pages, health=app.state.health)
    app.add_middleware(RequestLimits, respond=_error)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrustedHosts, settings=settings, respond=_error)
    return app


def _health_check(ctx: Context) -> tuple[Engine, Recent[None]]:
    """Return /healthz's check: SELECT 1 on a connection and a thread of its own (issue 17).

    Under load the request pool and the thread pool can both be full of queued work: the
    health check never waits in either, and a success is shared for a second.
    """
    url = ctx.engine.url.render_as_string(hide_password=False)
    # SQLite: a fresh connection each check (opening a file is cheap, and a kept one would go
    # on reading a file that was replaced); PostgreSQL: one kept connection, never queued for.
    pool: dict[str, Any] = (
        {"poolclass": NullPool}
        if url.startswith("sqlite")
        else {"pool_size": 1, "max_overflow": 0, "pool_timeout": 1}
    )
    engine = make_engine(url, **pool).execution_options(**{READ_ONLY: True})
    return engine, Recent(
        partial(ping, engine),
        HEALTH_SECONDS,
        executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="healthz"),
        on_close=engine.dispose,
    )


async def _start_worker(ctx: Context, stop: asyncio.Event) -> None:
    worker = build_worker(ctx)

    async def deliver() -> None:
        try:
            await worker.run(stop)
        except DatabaseUnavailable as exc:
            # The pages go on answering (healthz says 503); delivery needs a restart.
            log.error("the delivery worker stopped: %s", exc)

    # Next to delivery: outbound webhooks, and the bounce mailbox when one is configured.
    await asyncio.gather(
        deliver(),
        run_webhook_sender(ctx, stop),
        run_bounce_mailbox(ctx, stop),
        run_feed_poller(ctx, stop),
        run_automations(ctx, stop),
    )


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
    request: Request, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    if _wants_json(request):
        response: Response = JSONResponse({"detail": message, "code": code}, status_code=status)
    else:
        response = error_page(request, status, message)
    response.headers.update(headers or {})
    return response


def _busy(request: Request) -> Response:
    busy = Overloaded("The server is busy; please try again in a few seconds.")
    return _error(request, busy.status, busy.code, busy.message, busy.headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        return _error(request, exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _error(request, 422, "invalid", validation_message(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = {404: "Nothing is here.", 405: "That method is not allowed here."}.get(
            exc.status_code, str(exc.detail)
        )
        # exc.headers: a 405's Allow (RFC 9110 15.5.6), a 401's WWW-Authenticate.
        return _error(request, exc.status_code, "http_error", message, exc.headers)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: Exception) -> Response:
        # A number or text the database cannot hold (an id past 2**31, a NUL byte): the
        # request's fault, and the session has already rolled back.
        log.warning("refused unstorable input on %s: %s", request.url.path, exc)
        message = "A value in the request is out of range or cannot be stored."
        return _error(request, 422, "invalid", message)

    @app.exception_handler(PoolTimeout)
    async def pool_exhausted(request: Request, exc: PoolTimeout) -> Response:
        # Overload, not a bug: the client is told to come back (the gate in app.routing
        # makes this rare; it is the last line).
        log.warning("no database connection free for %s: %s", request.url.path, exc)
        return _busy(request)

    @app.exception_handler(OperationalError)
    async def database_busy(request: Request, exc: OperationalError) -> Response:
        if "database is locked" not in str(exc.orig):
            return await unexpected(request, exc)
        log.warning("the SQLite write lock stayed busy for %s", request.url.path)
        return _busy(request)

    @app.exception_handler(StaleDataError)
    @app.exception_handler(IntegrityError)
    async def raced(request: Request, exc: Exception) -> Response:
        # Two requests changed one row at the same moment (PostgreSQL lets both try): the
        # loser is told, and its transaction has rolled back. Not a bug in the request.
        log.warning("concurrent change refused on %s: %s", request.url.path, exc)
        message = "This was changed by another request at the same moment; reload and retry."
        return _error(request, 409, "conflict", message)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> Response:
        return _error(request, 400, "invalid", "The request is nested too deeply.")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # The one place a bug surfaces: logged with its traceback, answered without one.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        message = "Something went wrong on our side; please try again later."
        return _error(request, 500, "internal", message)
