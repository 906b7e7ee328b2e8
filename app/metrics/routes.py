"""GET /metrics: Prometheus text format for an editor token or MORNINGPOST_METRICS_TOKEN."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from app.deps import ContextDep, check_editor
from app.errors import Unauthorized
from app.metrics.database import build_registry
from app.routing import check_first, checked

metrics_router = APIRouter(tags=["metrics"])


def _check_reader(request: Request) -> None:
    ctx = request.app.state.ctx
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("A token is required: Authorization: Bearer <token>.")
    wanted = ctx.settings.metrics_token
    if wanted and hmac.compare_digest(token.encode(), wanted.encode()):
        return
    check_editor(ctx, token)  # reads, apart from the scrape's own read


async def require_metrics_reader(request: Request) -> None:
    """Let through the metrics token or any editor token; answer 401 otherwise."""
    if not checked(request, require_metrics_reader)[0]:
        await run_in_threadpool(_check_reader, request)


check_first(require_metrics_reader, _check_reader)  # before any body, outside the gate


def _registry(request: Request, ctx: ContextDep) -> CollectorRegistry:
    # One registry per app, built on first scrape: several apps in one process never collide.
    registry: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        # Reads only: on SQLite a scrape over a big ledger never holds the write lock.
        registry = build_registry(ctx.reads)
        request.app.state.metrics_registry = registry
    return registry


@metrics_router.get("/metrics", dependencies=[Depends(require_metrics_reader)])
def metrics(registry: Annotated[CollectorRegistry, Depends(_registry)]) -> Response:
    """Return every metric in the Prometheus text format."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
