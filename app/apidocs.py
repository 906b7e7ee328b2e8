"""The OpenAPI pages, /docs (Swagger UI) and /redoc, with no request leaving this server.

fastapi-offline serves the Swagger UI and ReDoc scripts and styles from files in its package
instead of a CDN. ReDoc's bundle still points one image (the "API docs by Redocly" logo) at
cdn.redoc.ly: our /redoc page forbids outside images (Content-Security-Policy) and hides it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse
from fastapi_offline import FastAPIOffline

DOCS_ASSETS = "/docs-assets"
_HIDE_REMOTE_IMAGES = "<style>img[src^='http']{display:none}</style>"
_LOCAL_IMAGES_ONLY = {"Content-Security-Policy": "img-src 'self' data:"}


def offline_docs_app(**kwargs: Any) -> FastAPI:
    """Return FastAPI(**kwargs) with /docs and /redoc served from packaged assets."""
    app = FastAPIOffline(
        docs_url="/docs",
        redoc_url=None,
        static_url=DOCS_ASSETS,
        # The online validator badge would call validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
        **kwargs,
    )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        html = bytes(page.body).decode().replace("</head>", _HIDE_REMOTE_IMAGES + "</head>", 1)
        return HTMLResponse(html, headers=_LOCAL_IMAGES_ONLY)

    return app
