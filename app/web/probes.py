"""Probes and fixed files: /healthz, /robots.txt, /favicon.ico (the archive is app.web.reading)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.web.cache import Recent
from app.web.methods import page_route
from app.web.stamp import DatabaseDown

# Probes and fixed files: included first (app.main), as routes are matched in order and these
# are asked the most, by monitors and crawlers, and under a spike.
router = APIRouter(tags=["public"])


@page_route(router, "/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """Answer browsers' automatic icon request without a 404 in their console."""
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=604800"})


# Token pages (confirm, unsubscribe, preferences) and the console are nobody's search result.
ROBOTS_TXT = (
    "User-agent: *\n"
    "Disallow: /confirm/\n"
    "Disallow: /unsubscribe/\n"
    "Disallow: /preferences/\n"
    "Disallow: /editor/\n"
)


@page_route(router, "/robots.txt", include_in_schema=False)
async def robots() -> Response:
    """Tell crawlers to leave token pages alone (also the benchmark's fixed-page ceiling)."""
    return Response(
        ROBOTS_TXT, media_type="text/plain", headers={"Cache-Control": "public, max-age=86400"}
    )


@page_route(router, "/healthz")
async def healthz(request: Request) -> Response:
    """Answer 200 when the database answered a SELECT 1 within the last second, else 503."""
    # A success is trusted for a second and shared by every probe in it, so a spike never
    # queues the probe behind pages for a thread or a connection; a failure is never kept.
    health: Recent[None] = request.app.state.health
    try:
        await health.get()
    except DatabaseDown:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})
