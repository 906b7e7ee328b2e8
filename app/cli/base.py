"""The `morningpost` Typer apps, output consoles and the set-up every command shares."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from app.cli_editor import editor_cli

if TYPE_CHECKING:
    from app.config import Settings
    from app.context import Context
    from app.errors import DomainError

cli = typer.Typer(
    help="Morning Post: self-hosted newsletter delivery.",
    epilog="New here? `morningpost demo` sends the sample issue into a demo outbox; then "
    "`morningpost issues create examples/ai-morning-post.md` and `morningpost serve`.",
    no_args_is_help=True,
)
editor_token_cli = typer.Typer(help="Editor API tokens.", no_args_is_help=True)
subscribers_cli = typer.Typer(help="Subscriber list tools.", no_args_is_help=True)
issues_cli = typer.Typer(help="Write, list and send issues.", no_args_is_help=True)
dkim_cli = typer.Typer(help="DKIM signing keys.", no_args_is_help=True)
# Panels of `morningpost --help`, in the order a newcomer needs them.
START, SEND, RUN, ADMIN = "Getting started", "Writing and sending", "Running", "Administration"
cli.add_typer(issues_cli, name="issues", rich_help_panel=SEND)
cli.add_typer(subscribers_cli, name="subscribers", rich_help_panel=SEND)
cli.add_typer(editor_token_cli, name="editor-token", rich_help_panel=ADMIN)
cli.add_typer(dkim_cli, name="dkim", rich_help_panel=ADMIN)
cli.add_typer(editor_cli, name="editor", rich_help_panel=ADMIN)

console = Console(stderr=True)
out = Console()


class _Options:
    verbose = False


@cli.callback()
def _global_options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also log INFO lines (to stderr).")
    ] = False,
) -> None:
    """Morning Post: self-hosted newsletter delivery."""
    _Options.verbose = verbose


def _configure_logging(*, daemon: bool) -> None:
    """Logs to stderr: INFO for servers and --verbose, else WARNING (results go to stdout)."""
    level = logging.INFO if daemon or _Options.verbose else logging.WARNING
    fmt = (
        "%(asctime)s %(levelname)s %(name)s: %(message)s"
        if daemon
        else "%(levelname)s: %(message)s"
    )
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr, force=True)


def _settings(*, daemon: bool = False, **overrides: Any) -> Settings:
    """Read settings (one clear line and exit 2 on a bad value)."""
    from app.config import ConfigError, load_settings

    _configure_logging(daemon=daemon)
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        # Plain echo, not rich: one line however narrow the terminal is.
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def _setup(
    *,
    migrate: bool = False,
    daemon: bool = False,
    announce: bool = False,
    settings: Settings | None = None,
    create: bool = False,
) -> Context:
    """Build the context; `announce` logs which embedded defaults are in use (for senders).

    Only `create` (serve, migrate, demo) may make a new database or signing key; any other
    command stops with one line when they are missing.
    """
    from app.config.startup import announce_defaults
    from app.context import build_context
    from app.logs import configure_logging
    from app.migrate import upgrade_head

    settings = settings or _settings(daemon=daemon)
    # MORNINGPOST_LOG_FORMAT=json: one object a line, at the level chosen above (before the
    # set-up check below, whose look at the database logs too).
    configure_logging(settings.log_format, level=logging.getLogger().level)
    if not create:
        # A daemon (the worker) waits for a database that is down; it is not visited here.
        _require_set_up(settings, may_upgrade=migrate, connect=not daemon)
    if announce or daemon:
        announce_defaults(settings)
    ctx = build_context(settings)
    if migrate:
        upgrade_head(ctx.engine)
    return ctx


def _require_set_up(settings: Settings, *, may_upgrade: bool, connect: bool) -> None:
    from app.cli_checks import NotSetUp, check_set_up

    try:
        check_set_up(settings, may_upgrade=may_upgrade, connect=connect)
    except NotSetUp as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _fail(exc: DomainError) -> typer.Exit:
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(1)


def _usage(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)
