"""GET /metrics: Prometheus text format for an editor token or MORNINGPOST_METRICS_TOKEN."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from app.db import session_scope
from app.deps import ContextDep
from app.editors import authenticate_editor
from app.errors import Unauthorized
from app.metrics.database import build_registry

metrics_router = APIRouter(tags=["metrics"])


def require_metrics_reader(request: Request, ctx: ContextDep) -> None:
    """Let through the metrics token or any editor token; answer 401 otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("A token is required: Authorization: Bearer <token>.")
    wanted = ctx.settings.metrics_token
    if wanted and hmac.compare_digest(token.encode(), wanted.encode()):
        return
    # A session of its own, committed before the scrape: on SQLite, an open write
    # transaction here would block the collector's reads.
    with session_scope(ctx.sessions) as session:
        authenticate_editor(session, token)


def _registry(request: Request, ctx: ContextDep) -> CollectorRegistry:
    # One registry per app, built on first scrape: several apps in one process never collide.
    registry: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = build_registry(ctx.sessions)
        request.app.state.metrics_registry = registry
    return registry


@metrics_router.get("/metrics", dependencies=[Depends(require_metrics_reader)])
def metrics(registry: Annotated[CollectorRegistry, Depends(_registry)]) -> Response:
    """Return every metric in the Prometheus text format."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
