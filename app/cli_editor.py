"""`morningpost editor add|list|remove`: accounts that sign in to the console at /editor/.

Like app.cli, only typer is imported at the top (`morningpost --help` must answer at once); each
command imports the application modules it needs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from app.context import Context

editor_cli = typer.Typer(help="Editor accounts for the web console.", no_args_is_help=True)


def _context() -> Context:
    from app.cli_checks import NotSetUp, check_set_up
    from app.config import ConfigError, load_settings
    from app.context import build_context
    from app.migrate import upgrade_head

    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        check_set_up(settings, may_upgrade=True)  # never creates a database or a key
    except NotSetUp as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    ctx = build_context(settings)
    upgrade_head(ctx.engine)
    return ctx


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line; the newline a shell pipe adds is not part of the password.
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("Password", hide_input=True)
    second = typer.prompt("Repeat the password", hide_input=True)
    if first != second:
        typer.echo("error: the two passwords differ", err=True)
        raise typer.Exit(1)
    return str(first)


@editor_cli.command("add")
def editor_add(
    email: str,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    host: Annotated[
        str, typer.Option(help="The --host you give `serve` (for the sign-in address).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="The --port you give `serve` (for the sign-in address).")
    ] = 8000,
) -> None:
    """Create an editor who can sign in to the console (asks for the password twice)."""
    from app.console.accounts import add_editor, check_password_rules
    from app.db import session_scope
    from app.errors import DomainError

    password = _read_password(password_stdin)
    try:
        check_password_rules(password)
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    ctx = _context()
    try:
        with session_scope(ctx.sessions) as session:
            row = add_editor(session, email, name, password)
            address = row.email
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        ctx.close()
    # The address `serve` will use: BASE_URL when set, else the --host/--port it listens on.
    base = ctx.settings.base_url
    if "base_url" not in ctx.settings.model_fields_set:
        shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)
        base = f"http://{shown}:{port}"
    typer.echo(f"editor {address} added; sign in at {base}/editor/")


@editor_cli.command("list")
def editor_list() -> None:
    """List editor accounts: address, name, last sign-in."""
    from app.console.accounts import list_editors
    from app.db import session_scope

    ctx = _context()
    with session_scope(ctx.sessions) as session:
        rows = [(r.email, r.name, r.last_login_at) for r in list_editors(session)]
    ctx.close()
    if not rows:
        typer.echo("no editors yet; add one with `morningpost editor add EMAIL`")
    for email, name, last in rows:
        when = last.isoformat(timespec="minutes") if last else "never"
        typer.echo(f"{email}\t{name or '-'}\tlast sign-in: {when}")


@editor_cli.command("remove")
def editor_remove(email: str) -> None:
    """Delete an editor account; its browser sessions end at once."""
    from app.console.accounts import remove_editor
    from app.db import session_scope
    from app.errors import DomainError

    ctx = _context()
    try:
        with session_scope(ctx.sessions) as session:
            remove_editor(session, email)
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        ctx.close()
    typer.echo(f"editor {email.strip().lower()} removed")
