"""Sign in and sign out of the console."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.console.accounts import verify_login
from app.console.kept_text import MARKDOWN_MAX, after_sign_in
from app.console.login_limits import LoginVerdict, check_login
from app.console.return_to import safe_next
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
    same_origin,
)
from app.deps import ContextDep
from app.models import utcnow
from app.web.proxies import client_ip

router = APIRouter(route_class=ConsoleRoute, prefix=PREFIX, include_in_schema=False)

WRONG = "That email address and password do not match an editor account."


@router.get("/login")
def login_form(
    request: Request, ctx: ContextDep, next: Annotated[str, Query(max_length=2000)] = ""
) -> Response:
    """Show the sign-in form (or go where the editor asked for when already signed in)."""
    target = safe_next(next)
    raw = request.cookies.get(cookie_name(request))
    if load_session_apart(ctx.reads, ctx.sessions, raw, utcnow()) is not None:
        return redirect(target)
    return render(request, "login.html", email="", error=None, next=target)


async def login_gate(
    request: Request, ctx: ContextDep, email: Annotated[str, Form(max_length=400)] = ""
) -> LoginVerdict:
    """Refuse a foreign origin, count the attempt, and hold it while its account is slowed."""
    if not same_origin(request):  # no Origin: not a browser; the password is the check
        # There is no session yet to hold a CSRF token: a foreign page must not sign a
        # browser in to an account of its choosing (login CSRF).
        raise CsrfRefused("Sign in from this site's own sign-in page.")
    verdict = await run_in_threadpool(
        check_login, ctx.sessions, client_ip(request, ctx.settings), email, utcnow()
    )
    if verdict.allowed and verdict.delay:
        # Asleep on the loop, not in a thread: a flood of slowed attempts holds no thread.
        await asyncio.sleep(verdict.delay)
    return verdict


@router.post("/login")
def login(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    decision: Annotated[LoginVerdict, Depends(login_gate)],
    email: Annotated[str, Form(max_length=400)] = "",
    password: Annotated[str, Form(max_length=2000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
    markdown: Annotated[str | None, Form(max_length=MARKDOWN_MAX)] = None,
    version: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Check the password; on success set the session cookie and go where the editor was."""
    now = utcnow()
    if not decision.allowed:
        minutes = max(1, round(decision.retry_after / 60))
        error = f"Too many sign-in attempts. Please wait about {minutes} min and try again."
        locked = render(
            request, "login.html", status_code=429, email=email, error=error, next=safe_next(next)
        )
        locked.headers["Retry-After"] = str(decision.retry_after)
        return locked
    # Looked up in a read transaction; argon2 runs with no transaction open (no lock held).
    editor = verify_login(session, email, password, now, reads=ctx.reads)
    if editor is None:
        return _wrong(request, email, next, markdown, version)
    prune_sessions(session, now)  # sign-ins are rare: a good moment to drop stale sessions
    raw = start_session(session, editor, now)
    response = redirect(after_sign_in(session, editor.id, next, markdown, now, version))
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


def _wrong(request: Request, email: str, next: str, markdown: str | None, version: str) -> Response:
    # A wrong password on the session-ended page keeps the text on that page.
    if markdown is not None:
        return render(
            request,
            "session_ended.html",
            status_code=401,
            email=email,
            error=WRONG,
            next=safe_next(next),
            markdown=markdown,
            version=version if version.isdigit() else "",
        )
    return render(
        request, "login.html", status_code=401, email=email, error=WRONG, next=safe_next(next)
    )


@router.post("/logout")
def logout(request: Request, editor: EditorDep, session: SessionDep) -> Response:
    """End the session (CSRF-checked like every other post) and forget the cookie."""
    end_session(session, editor.session_id)
    response = redirect(f"{PREFIX}/login")
    response.delete_cookie(
        cookie_name(request), path="/", secure=is_https(request), httponly=True, samesite="lax"
    )
    return response
