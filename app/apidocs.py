"""The OpenAPI pages, /docs (Swagger UI) and /redoc, with no request leaving this server.

fastapi-offline ships the Swagger UI and ReDoc scripts and styles; they are served from its
package instead of a CDN. ReDoc's bundle still points one image (the "API docs by Redocly"
logo) at cdn.redoc.ly: our /redoc page forbids outside images (Content-Security-Policy) and
hides it.

The page handlers read the app from the request, never from a closure: FastAPI keeps every
endpoint it has classified in a module-level cache, so a closure over the app would keep each
app built in one process (the tests build hundreds) alive, with all it holds.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_ASSETS = "/docs-assets"
_HIDE_REMOTE_IMAGES = "<style>img[src^='http']{display:none}</style>"
_LOCAL_IMAGES_ONLY = {"Content-Security-Policy": "img-src 'self' data:"}
# The scripts, styles and icon fastapi-offline ships inside its package.
_ASSETS = str(files("fastapi_offline") / "static")


def offline_docs_app(**kwargs: Any) -> FastAPI:
    """Return FastAPI(**kwargs) with /docs and /redoc served from packaged assets."""
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        # The online validator badge would call validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
        **kwargs,
    )
    app.mount(DOCS_ASSETS, StaticFiles(directory=_ASSETS), name="static-offline-docs")
    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    assert app.swagger_ui_oauth2_redirect_url is not None
    app.add_api_route(
        app.swagger_ui_oauth2_redirect_url,
        swagger_ui_redirect,
        methods=["GET"],
        include_in_schema=False,
    )
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
    return app


async def swagger_ui(request: Request) -> HTMLResponse:
    """Serve Swagger UI with its scripts from this server."""
    app: FastAPI = request.app
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
        swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
        swagger_ui_parameters=app.swagger_ui_parameters,
    )


async def swagger_ui_redirect() -> HTMLResponse:
    """Serve Swagger UI's OAuth2 redirect page."""
    return get_swagger_ui_oauth2_redirect_html()


async def redoc(request: Request) -> HTMLResponse:
    """Serve ReDoc with its script from this server and outside images hidden."""
    app: FastAPI = request.app
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
