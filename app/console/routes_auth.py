"""Sign in and sign out of the console."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from app.console.accounts import verify_login
from app.console.login_limits import check_login
from app.console.sessions import (
    ABSOLUTE,
    end_session,
    load_session_apart,
    prune_sessions,
    start_session,
)
from app.console.web import (
    PREFIX,
    ConsoleRoute,
    CsrfRefused,
    EditorDep,
    SessionDep,
    cookie_name,
    is_https,
    redirect,
    render,
)
from app.deps import ContextDep
from app.models import utcnow

router = APIRouter(route_class=ConsoleRoute, prefix=PREFIX, include_in_schema=False)

WRONG = "That email address and password do not match an editor account."


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser, or an old one: the password is the check
    own = {request.app.state.ctx.settings.base_url, str(request.base_url).rstrip("/")}
    return origin.rstrip("/") in own


@router.get("/login")
def login_form(request: Request, ctx: ContextDep) -> Response:
    """Show the sign-in form (or go to the dashboard when already signed in)."""
    raw = request.cookies.get(cookie_name(request))
    if load_session_apart(ctx.reads, ctx.sessions, raw, utcnow()) is not None:
        return redirect(f"{PREFIX}/")
    return render(request, "login.html", email="", error=None)


@router.post("/login")
def login(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    email: Annotated[str, Form(max_length=400)] = "",
    password: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the password; on success set the session cookie and go to the dashboard."""
    if not _same_origin(request):
        # There is no session yet to hold a CSRF token: a foreign page must not sign a
        # browser in to an account of its choosing (login CSRF).
        raise CsrfRefused("Sign in from this site's own sign-in page.")
    now = utcnow()
    decision = check_login(ctx.sessions, _client_ip(request), email, now)
    if not decision.allowed:
        minutes = max(1, round(decision.retry_after / 60))
        error = f"Too many sign-in attempts. Please wait about {minutes} min and try again."
        locked = render(request, "login.html", status_code=429, email=email, error=error)
        locked.headers["Retry-After"] = str(decision.retry_after)
        return locked
    editor = verify_login(session, email, password, now, reads=ctx.reads)
    if editor is None:
        return render(request, "login.html", status_code=401, email=email, error=WRONG)
    prune_sessions(session, now)  # sign-ins are rare: a good moment to drop stale sessions
    raw = start_session(session, editor, now)
    response = redirect(f"{PREFIX}/")
    response.set_cookie(
        cookie_name(request),
        raw,
        max_age=int(ABSOLUTE.total_seconds()),
        path="/",
        secure=is_https(request),
        httponly=True,
        samesite="lax",
    )
    return response


@router.post("/logout")
def logout(request: Request, editor: EditorDep, session: SessionDep) -> Response:
    """End the session (CSRF-checked like every other post) and forget the cookie."""
    end_session(session, editor.session_id)
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(
        cookie_name(request), path="/", secure=is_https(request), httponly=True, samesite="lax"
    )
    return response
