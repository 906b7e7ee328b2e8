"""Console pages for newsletters: the list, a new one, and each one's settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.audience import newsletters
from app.config import Settings
from app.console.web import PREFIX, ConsoleRoute, EditorDep, SessionDep, redirect, render, signed_in
from app.deps import ContextDep
from app.errors import DomainError
from app.models import Newsletter, utcnow
from app.rendering.masthead import Masthead, resolve

router = APIRouter(
    route_class=ConsoleRoute,
    prefix=f"{PREFIX}/newsletters",
    include_in_schema=False,
    dependencies=[Depends(signed_in)],
)

# The form's fields, in order: (stored field, label, help).
FIELDS = [
    ("name", "Name", "The newsletter's name in inboxes, on its pages and in its footer."),
    ("tagline", "Tagline", "One line under the name."),
    ("from_address", "From", "Name <news@example.org>, as readers see the sender."),
    ("reply_to", "Reply-to", "Where replies go; empty: to the From address."),
    ("postal_address", "Postal address", "Shown in every email's footer, as the law asks."),
    ("list_id", "List-Id", "The List-Id header mail filters sort by."),
]
LABELS = {field: label for field, label, _ in FIELDS} | {"slug": "Slug"}
NOTICES = {"saved": "The newsletter's settings are saved.", "created": "The newsletter is added."}
Text = Annotated[str, Form(max_length=1000)]


def _sentence(field: str, message: str) -> str:
    """Return a service message about a field in the form's words ("From must be …")."""
    return f"{LABELS[field]} {message.removeprefix(field + ' ')}" if field in LABELS else message


def defaults_of(row: Newsletter, settings: Settings) -> Masthead:
    """Return what each empty field falls back to: the environment's settings."""
    return resolve(
        settings,
        id=row.id,
        slug=row.slug,
        is_default=row.is_default,
        name=row.name,
        tagline=None,
        from_address=None,
        reply_to=None,
        postal_address=None,
        list_id=None,
    )


def _list_page(
    request: Request,
    session: Session,
    settings: Settings,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    rows = newsletters.list_newsletters(session)
    return render(
        request,
        "newsletters.html",
        status_code=status,
        section="settings",
        rows=[(row, newsletters.masthead(row, settings)) for row in rows],
        form=form or {},
        errors=errors or {},
        notice=NOTICES.get(request.query_params.get("done", "")),
    )


@router.get("")
def newsletter_list(
    request: Request, session: SessionDep, ctx: ContextDep, _: EditorDep
) -> Response:
    """List the newsletters, with a form to add one."""
    return _list_page(request, session, ctx.settings)


@router.post("")
def newsletter_create(
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    slug: Annotated[str, Form(max_length=200)] = "",
    name: Text = "",
) -> Response:
    """Add a newsletter (a slug and a name); its other fields fall back to the environment."""
    data = {"slug": slug.strip(), "name": name}
    errors = {f: _sentence(f, m) for f, m in newsletters.field_errors(data).items()}
    if not errors:
        try:
            row = newsletters.create_newsletter(session, data, utcnow())
        except DomainError as exc:
            errors = {"slug" if "slug" in exc.message else "name": exc.message}
    if errors:
        session.rollback()
        form = {"slug": slug, "name": name}
        return _list_page(request, session, ctx.settings, form=form, errors=errors, status=422)
    return redirect(f"{PREFIX}/newsletters/{row.id}?done=created")


def _edit_page(
    request: Request,
    session: Session,
    settings: Settings,
    newsletter_id: int,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    row = newsletters.get_newsletter(session, newsletter_id)
    stored = {field: getattr(row, field) or "" for field, _, _ in FIELDS}
    return render(
        request,
        "newsletter_form.html",
        status_code=status,
        section="settings",
        row=row,
        fields=FIELDS,
        form=form if form is not None else stored,
        defaults=defaults_of(row, settings),
        env_name=settings.newsletter_name,
        errors=errors or {},
        notice=NOTICES.get(request.query_params.get("done", "")),
    )


@router.get("/{newsletter_id}")
def newsletter_edit(
    newsletter_id: int, request: Request, session: SessionDep, ctx: ContextDep, _: EditorDep
) -> Response:
    """Show one newsletter's settings; an empty field shows the environment's value."""
    return _edit_page(request, session, ctx.settings, newsletter_id)


@router.post("/{newsletter_id}")
def newsletter_save(
    newsletter_id: int,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    _: EditorDep,
    name: Text = "",
    tagline: Text = "",
    from_address: Text = "",
    reply_to: Text = "",
    postal_address: Text = "",
    list_id: Text = "",
) -> Response:
    """Save the fields; each one is checked as the API checks it, its refusal shown beside it."""
    data = {
        "name": name,
        "tagline": tagline,
        "from_address": from_address,
        "reply_to": reply_to,
        "postal_address": postal_address,
        "list_id": list_id,
    }
    errors = {f: _sentence(f, m) for f, m in newsletters.field_errors(data).items()}
    if not errors:
        try:
            newsletters.update_newsletter(session, newsletter_id, data, utcnow())
        except DomainError as exc:
            if exc.status == 404:
                raise
            errors = {"name": exc.message}
    if errors:
        session.rollback()
        return _edit_page(
            request, session, ctx.settings, newsletter_id, form=data, errors=errors, status=422
        )
    return redirect(f"{PREFIX}/newsletters/{newsletter_id}?done=saved")
