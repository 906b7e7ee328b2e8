"""FastAPI dependencies: the request's session, the process context, the editor check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from app.context import Context
from app.db import session_scope
from app.editors import authenticate_editor
from app.errors import Unauthorized
from app.models import EditorToken
from app.models.base import ID_MAX


def get_context(request: Request) -> Context:
    """Return the process context stored on the app."""
    ctx: Context = request.app.state.ctx
    return ctx


def get_session(ctx: Annotated[Context, Depends(get_context)]) -> Iterator[Session]:
    """Yield the request's session; commit if the handler succeeded, roll back otherwise."""
    with session_scope(ctx.sessions) as session:
        yield session


# scope="function": the session commits when the handler returns, before the response is sent,
# so a client never sees 202 for work that is not yet committed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def require_editor(request: Request, session: SessionDep) -> EditorToken:
    """Return the editor behind the bearer token, or answer 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("An editor token is required: Authorization: Bearer <token>.")
    return authenticate_editor(session, token.strip())


ContextDep = Annotated[Context, Depends(get_context)]
EditorDep = Annotated[EditorToken, Depends(require_editor)]
# Ids in paths are bounded, so a number past any id is a 422 before a query runs.
IdPath = Annotated[int, Path(ge=1, le=ID_MAX)]
