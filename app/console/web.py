"""The console's plumbing: templates, the signed-in check, CSRF, security headers, redirects."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.console.block_form import as_markdown
from app.console.newsletter_choice import QUERY as NEWSLETTER_QUERY
from app.console.newsletter_choice import query_of
from app.console.return_to import (
    asked_for,
    blocks_form_of,
    form_page_of,
    is_markdown_form_post,
    login_url,
)
from app.console.sessions import SignedIn, load_session_apart
from app.deps import get_session
from app.errors import DomainError
from app.models import utcnow
from app.routing import GuardedRoute, check_first, checked

_HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))

PREFIX = "/editor"
COOKIE = "mp_editor"
SECURE_COOKIE = "__Host-mp_editor"  # the prefix makes browsers insist on Secure and Path=/
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

# No inline script anywhere in the console: a stored-XSS slip still cannot run code.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors 'none'"
)
# The email preview is shown in the console's own frames; it carries inline styles (as email
# does) and never a script.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src * data: cid:; "
    "font-src * data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


class SignInRequired(DomainError):
    """No valid console session: the browser is sent to the sign-in page."""

    status = 303
    code = "sign_in"

    def __init__(self) -> None:
        super().__init__("Please sign in.")

    @property
    def headers(self) -> dict[str, str]:
        """Send the browser to the sign-in page."""
        return {"Location": f"{PREFIX}/login"}


class CsrfRefused(DomainError):
    """A state-changing console request without this session's CSRF token."""

    status = 403
    code = "csrf"


class SessionEnded(CsrfRefused):
    """A post from a page whose session has ended: the text is kept and sign-in offered."""

    code = "session_ended"


class StaleForm(CsrfRefused):
    """A post whose CSRF token is not the session's: forged, or from a page opened in an earlier
    session (the editor signed in again in another tab). Nothing is saved from it."""

    code = "stale_form"

    def __init__(self, editor: SignedIn) -> None:
        super().__init__("The form was stale or forged (no valid CSRF token); nothing changed.")
        self.editor = editor


def same_origin(request: Request) -> bool:
    """Tell whether a post comes from this site's own pages (no Origin header: not a browser's)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = {request.app.state.ctx.settings.base_url, str(request.base_url).rstrip("/")}
    return origin.rstrip("/") in own


def cookie_name(request: Request) -> str:
    """Return the session cookie's name (the __Host- one on https)."""
    return SECURE_COOKIE if is_https(request) else COOKIE


def is_https(request: Request) -> bool:
    """Tell whether the console is served over https (BASE_URL decides, not the socket)."""
    return bool(request.app.state.ctx.settings.base_url.startswith("https://"))


# Committed when the route returns, before the answer leaves: a browser that follows a redirect
# at once must read what the form post wrote (the app's request-scoped session commits only
# after the response is sent, which PostgreSQL readers can overtake).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _load_editor(request: Request) -> SignedIn | None:
    ctx = request.app.state.ctx
    raw = request.cookies.get(cookie_name(request))
    return load_session_apart(ctx.reads, ctx.sessions, raw, utcnow())


async def _session_editor(request: Request) -> SignedIn | None:
    # app.routing has run the lookup (in a thread) before the body was read, outside any
    # request session; a route it did not guard looks up here, in a thread too.
    done, editor = checked(request, _session_editor)
    return editor if done else await run_in_threadpool(_load_editor, request)


check_first(_session_editor, _load_editor)


async def signed_in(
    request: Request, editor: Annotated[SignedIn | None, Depends(_session_editor)]
) -> SignedIn:
    """Return the editor behind the session cookie; check CSRF on anything but a read.

    Only the cookie counts: an API bearer token never opens the console.
    """
    if editor is None:
        if request.method not in SAFE_METHODS:
            raise SessionEnded("Your session has ended; sign in again and repeat the action.")
        raise SignInRequired()
    if request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER)
        if given is None:
            form = await request.form()  # Starlette caches it: the route reads it again
            value = form.get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
        if not editor.csrf_ok(given):
            raise StaleForm(editor)
    request.state.editor = editor
    return editor


async def posted_form(request: Request) -> FormData:
    """Return the posted form (parsed once; sync routes take it as a dependency)."""
    return await request.form()


EditorDep = Annotated[SignedIn, Depends(signed_in)]


def when(value: datetime | None) -> str:
    """Format a UTC time for people: 2026-11-30 06:00 UTC."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def duration(seconds: float | int | None) -> str:
    """Format an ETA: 3 min 20 s, 1 h 5 min."""
    if seconds is None:
        return "—"
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min {s % 60} s"
    return f"{s} s"


def size(count: int) -> str:
    """Format a byte count for people: 10 MB, 2.5 MB, 512 KB."""
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    return f"{max(1, round(count / 1024))} KB"


templates.env.filters["when"] = when
templates.env.filters["duration"] = duration
templates.env.filters["size"] = size


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a console template with the editor, the CSRF token and the newsletter's name."""
    settings = request.app.state.ctx.settings
    editor: SignedIn | None = getattr(request.state, "editor", None)
    context.setdefault("editor", editor)
    context.setdefault("csrf", editor.csrf_token if editor else "")
    context.setdefault("newsletter_name", settings.newsletter_name)
    context.setdefault("section", "")
    # The nav carries the chosen newsletter from page to page (see newsletter_choice).
    context.setdefault("nl_query", query_of(request.query_params.get(NEWSLETTER_QUERY)))
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def redirect(path: str) -> RedirectResponse:
    """Answer a form post with a 303 to a console page (Post/Redirect/Get)."""
    return RedirectResponse(path, status_code=303)


TITLES = {
    403: "Not allowed",
    404: "Not found",
    409: "Not now",
    422: "Please check what you entered",
}


class ConsoleRoute(GuardedRoute):
    """A console route: a refusal becomes a console page, a missing session the sign-in page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler; the session dependency has already rolled back when we catch."""
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return redirect(login_url(asked_for(request)))
            except SessionEnded as exc:
                return await session_ended_page(request, exc)
            except StaleForm as exc:
                return await stale_form_page(request, exc)
            except DomainError as exc:
                title = TITLES.get(exc.status, "Something went wrong")
                page = render(
                    request, "error.html", status_code=exc.status, title=title, message=exc.message
                )
                page.headers.update(exc.headers)
                return page

        return console_handler


def posted_text(path: str, form: FormData) -> tuple[str | None, str | None]:
    """Return the Markdown a refused post carries and, for the block editor, the Markdown
    editor it comes back in (its sections are kept as the issue's Markdown)."""
    markdown = form.get("markdown")
    if isinstance(markdown, str):
        return markdown, None
    editor_page = blocks_form_of(path)
    if editor_page is not None:
        converted = as_markdown(form)
        if converted is not None:
            return converted, editor_page
    return None, None


async def session_ended_page(request: Request, exc: SessionEnded) -> Response:
    """Answer a post whose session ended: JSON for scripts, else sign-in with the text kept."""
    back = form_page_of(request.url.path, request.headers.get("referer"))
    if "application/json" in request.headers.get("accept", ""):
        body = {"error": exc.code, "message": exc.message, "sign_in": login_url(back)}
        return JSONResponse(body, status_code=exc.status)
    form = await request.form()
    markdown, editor_page = posted_text(request.url.path, form)
    if not same_origin(request):
        # Another site's post: its text is not the editor's and must not be kept at sign-in.
        markdown, editor_page = None, None
    version = form.get("version")
    page = render(
        request,
        "session_ended.html",
        status_code=exc.status,
        next=editor_page or back,
        markdown=markdown,
        # The version the form was opened at goes along: a save made meanwhile is not overwritten.
        version=version if isinstance(version, str) and version.isdigit() else "",
        email="",
        error=None,
    )
    return page


async def stale_form_page(request: Request, exc: StaleForm) -> Response:
    """Refuse a post with another session's CSRF token; the editor's own text comes back.

    Nothing is written. A Markdown form posted from this site returns in a form of the current
    session, filled, to be saved again on purpose; a post from another site gets the refusal.
    """
    if "application/json" in request.headers.get("accept", ""):
        problem = "this page was opened in an earlier session; reload it to save again."
        body = {"saved": False, "error": exc.code, "message": exc.message, "problem": problem}
        return JSONResponse(body, status_code=exc.status)
    request.state.editor = exc.editor  # the page is the signed-in editor's (nav, fresh token)
    form = await request.form()
    path = request.url.path
    markdown, editor_page = posted_text(path, form)
    action = editor_page or (path if is_markdown_form_post(path) else None)
    if markdown is not None and action is not None and same_origin(request):
        version, newsletter = form.get("version"), form.get("newsletter")
        return render(
            request,
            "stale_form.html",
            status_code=exc.status,
            action=action,
            back=form_page_of(action, None),
            markdown=markdown,
            version=version if isinstance(version, str) else None,
            newsletter=newsletter if isinstance(newsletter, str) else "",
        )
    return render(
        request, "error.html", status_code=exc.status, title=TITLES[403], message=exc.message
    )


def console_static() -> StaticFiles:
    """Return the console's stylesheet and script."""
    return StaticFiles(directory=str(_HERE / "static"))


class ConsoleHeaders:
    """ASGI middleware: every /editor response refuses framing and inline script, and is private."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to responses under /editor."""
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        preview = path.endswith(("/preview.html", "/preview-markdown"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = {
                    b"x-frame-options": b"SAMEORIGIN" if preview else b"DENY",
                    b"content-security-policy": (PREVIEW_CSP if preview else CONSOLE_CSP).encode(),
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"same-origin",
                    b"cache-control": b"no-store",
                }
                if path.startswith(f"{PREFIX}/static/"):
                    extra[b"cache-control"] = b"no-cache"
                headers += [(k, v) for k, v in extra.items() if k not in names]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
