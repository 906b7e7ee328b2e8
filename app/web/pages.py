"""Jinja-rendered HTML pages shared by the public routes and the error handler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app.rendering.masthead import Masthead, from_settings

_HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))

ERROR_TITLES = {
    400: "That link doesn't work",
    401: "Not signed in",
    404: "Page not found",
    409: "Not now",
    422: "Please check what you entered",
    413: "That is too much at once",
    429: "Slow down a little",
    500: "Something went wrong",
}


def identity(head: Masthead) -> dict[str, Any]:
    """Return the template context naming a newsletter: its name, tagline, footer and URLs."""
    return {
        "site": head,
        "newsletter_name": head.name,
        "tagline": head.tagline,
        "postal_address": head.postal_address,
    }


def page_context(request: Request, **context: Any) -> dict[str, Any]:
    """Return a template's context: the request, the newsletter identity, then `context`.

    Routes pass the identity read from the newsletter's row (`identity`); a page made
    without one (an error page, rendered on the event loop where no query may run) shows
    the settings' identity.
    """
    ctx = request.app.state.ctx
    if "site" not in context:
        for key, value in identity(from_settings(ctx.settings)).items():
            context.setdefault(key, value)
    context.setdefault("base_url", ctx.settings.base_url)
    context.setdefault("welcome_email", ctx.settings.welcome_email)
    context.setdefault("request", request)
    return context


def render_page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render templates/<name> with the newsletter identity in its context."""
    return templates.TemplateResponse(
        request, name, page_context(request, **context), status_code=status
    )


def page_html(request: Request, name: str, **context: Any) -> bytes:
    """Return the bytes render_page would send, for a page kept in the page cache."""
    html: str = templates.get_template(name).render(page_context(request, **context))
    return html.encode("utf-8")


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """Render the friendly error page for `status`."""
    title = ERROR_TITLES.get(status, "Something went wrong")
    return render_page(request, "error.html", status=status, title=title, message=message)


def static_files() -> StaticFiles:
    """Return the app's stylesheet and images."""
    return StaticFiles(directory=str(_HERE / "static"))
