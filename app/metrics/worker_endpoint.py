"""GET /metrics for a `morningpost worker` process, which has no HTTP API of its own.

Its per-process counters (SMTP results, latencies, claims) live only in that process, so a
worker started with MORNINGPOST_WORKER_METRICS_PORT serves them, with the same bearer check as
the API's /metrics, on MORNINGPOST_WORKER_METRICS_HOST (loopback by default).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.context import Context
from app.errors import DomainError
from app.metrics.routes import metrics_router


class _SignalFreeServer(uvicorn.Server):
    """A uvicorn server that leaves SIGTERM/SIGINT to the worker, which owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install no signal handlers."""
        yield


def metrics_app(ctx: Context) -> FastAPI:
    """Return an app that serves only GET /metrics for this process."""
    app = FastAPI(title="Morning Post worker metrics", docs_url=None, redoc_url=None)
    app.state.ctx = ctx
    app.include_router(metrics_router)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=exc.status)

    return app


async def serve_worker_metrics(ctx: Context, stop: asyncio.Event) -> None:
    """Serve /metrics until `stop` is set; do nothing when no port is configured."""
    port = ctx.settings.worker_metrics_port
    if not port:
        return
    config = uvicorn.Config(
        metrics_app(ctx),
        host=ctx.settings.worker_metrics_host,
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    server = _SignalFreeServer(config)
    task = asyncio.create_task(server.serve())
    try:
        await stop.wait()
    finally:
        server.should_exit = True
        await task
