"""Console actions on one reader's tags and attributes (the services the API uses)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.audience import tags
from app.console.attribute_form import typed_value
from app.console.routes_people import reader_page
from app.console.web import PREFIX, ConsoleRoute, EditorDep, SessionDep, redirect, signed_in
from app.errors import DomainError
from app.models import utcnow
from app.subscribers import service as subscribers

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/subscribers",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)

Short = Annotated[str, Form(max_length=100)]


@router.post("/{subscriber_id}/tags")
def add_tags(
    subscriber_id: int,
    request: Request,
    session: SessionDep,
    _: EditorDep,
    tags_text: Annotated[str, Form(alias="tags", max_length=4000)] = "",
) -> Response:
    """Add the tags typed (separated by commas or spaces) to the reader."""
    try:
        tags.add_tags(session, subscriber_id, re.split(r"[,\s]+", tags_text.strip()), utcnow())
    except DomainError as exc:
        session.rollback()
        return reader_page(request, session, subscriber_id, error=exc.message, status=exc.status)
    return redirect(f"{PREFIX}/subscribers/{subscriber_id}?done=tagged#tags")


@router.post("/{subscriber_id}/tags/remove")
def remove_tag(
    subscriber_id: int, request: Request, session: SessionDep, _: EditorDep, tag: Short = ""
) -> Response:
    """Take one tag off the reader."""
    try:
        tags.remove_tag(session, subscriber_id, tag)
    except DomainError as exc:
        session.rollback()
        return reader_page(request, session, subscriber_id, error=exc.message, status=exc.status)
    return redirect(f"{PREFIX}/subscribers/{subscriber_id}?done=tagged#tags")


@router.post("/{subscriber_id}/attributes")
def set_attribute(
    subscriber_id: int,
    request: Request,
    session: SessionDep,
    _: EditorDep,
    name: Short = "",
    kind: Annotated[str, Form(alias="type", max_length=10)] = "string",
    value: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Set one attribute (a string, a number or a boolean) within the API's bounds."""
    try:
        patch = {name.strip(): typed_value(name.strip(), kind, value)}
        subscribers.update_subscriber(session, subscriber_id, now=utcnow(), attributes=patch)
    except DomainError as exc:
        session.rollback()
        form = {"name": name, "type": kind, "value": value}
        return reader_page(
            request,
            session,
            subscriber_id,
            error=exc.message,
            status=exc.status,
            attribute_form=form,
        )
    return redirect(f"{PREFIX}/subscribers/{subscriber_id}?done=attribute#attributes")


@router.post("/{subscriber_id}/attributes/remove")
def remove_attribute(
    subscriber_id: int, request: Request, session: SessionDep, _: EditorDep, name: Short = ""
) -> Response:
    """Remove one attribute."""
    try:
        subscribers.update_subscriber(
            session, subscriber_id, now=utcnow(), attributes={name.strip(): None}
        )
    except DomainError as exc:
        session.rollback()
        return reader_page(request, session, subscriber_id, error=exc.message, status=exc.status)
    return redirect(f"{PREFIX}/subscribers/{subscriber_id}?done=attribute#attributes")
