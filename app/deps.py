"""FastAPI dependencies: the request's session, the process context, the editor check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.context import Context
from app.db import session_scope
from app.editors import authenticate_editor, touch_editor_token
from app.errors import Unauthorized
from app.models import EditorToken, utcnow
from app.models.base import ID_MAX
from app.routing import check_first, checked


async def get_context(request: Request) -> Context:
    """Return the process context stored on the app (a coroutine: no thread for so little)."""
    ctx: Context = request.app.state.ctx
    return ctx


ContextDep = Annotated[Context, Depends(get_context)]


async def get_session(
    request: Request, ctx: Annotated[Context, Depends(get_context)]
) -> AsyncIterator[Session]:
    """Yield the request's session; commit if the handler succeeded, roll back otherwise.

    A GET or HEAD only reads: its session never takes SQLite's write lock. A GET that writes
    (a click is counted) asks for `WriteSessionDep` instead.
    """
    factory = ctx.reads if request.method in READ_METHODS else ctx.sessions
    async with _scope(factory) as session:
        yield session


async def get_write_session(ctx: ContextDep) -> AsyncIterator[Session]:
    """Yield a session that may write, whatever the method."""
    async with _scope(ctx.sessions) as session:
        yield session


@asynccontextmanager
async def _scope(factory: sessionmaker[Session]) -> AsyncIterator[Session]:
    """session_scope for a route: opened on the loop, committed or rolled back on a thread.

    Opening a session does no I/O (its connection is taken at the first query, in the
    handler's thread), so it is opened here, on the loop. As a sync generator it took a
    thread hop to open as well as to close: 0.3-0.4 ms each on a loaded 2-core machine.
    """
    session = factory()
    try:
        yield session
    except BaseException:
        await _settle(session, commit=False)
        raise
    await _settle(session, commit=True)


async def _settle(session: Session, *, commit: bool) -> None:
    def work() -> None:
        try:
            if commit:
                session.commit()
            else:
                session.rollback()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # Shielded: a client that hangs up must not leave the transaction open or the connection
    # out of the pool. A limiter of its own, as FastAPI gives a sync dependency's exit: the
    # close never queues behind the handlers it follows.
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(work, limiter=anyio.CapacityLimiter(1))


READ_METHODS = ("GET", "HEAD")
# scope="function": the session commits when the handler returns, before the response is sent,
# so a client never sees 202 for work that is not yet committed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
WriteSessionDep = Annotated[Session, Depends(get_write_session, scope="function")]


def bearer_token(request: Request) -> str:
    """Return the request's bearer token, or answer 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("An editor token is required: Authorization: Bearer <token>.")
    return token.strip()


def check_editor(ctx: Context, token: str) -> EditorToken:
    """Return the editor owning `token` (401 otherwise), apart from any request session.

    The lookup reads; "last used" is written at most once a minute, in a short transaction of
    its own, so an editor's GET never takes SQLite's write lock.
    """
    with session_scope(ctx.reads) as session:
        row = authenticate_editor(session, token)
    with session_scope(ctx.sessions) as session:
        touch_editor_token(session, row, utcnow())
    return row


def _editor_of(request: Request) -> EditorToken:
    return check_editor(request.app.state.ctx, bearer_token(request))


async def require_editor(request: Request) -> EditorToken:
    """Return the editor behind the bearer token, or answer 401 (checked before the body)."""
    done, editor = checked(request, require_editor)
    return editor if done else await run_in_threadpool(_editor_of, request)


check_first(require_editor, _editor_of)


EditorDep = Annotated[EditorToken, Depends(require_editor)]
# Ids in paths are bounded, so a number past any id is a 422 before a query runs.
IdPath = Annotated[int, Path(ge=1, le=ID_MAX)]
