"""Administration: migrations, editor tokens, subscriber import, DKIM keys, webhook secret."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from app.cli.base import (
    ADMIN,
    _fail,
    _settings,
    _setup,
    cli,
    console,
    dkim_cli,
    editor_token_cli,
    out,
    subscribers_cli,
)


@cli.command(rich_help_panel=ADMIN)
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    ctx = _setup(migrate=True, create=True)
    out.print("database is at the latest migration")
    ctx.close()


@editor_token_cli.command("create")
def editor_token_create(
    name: str,
    expires_days: Annotated[
        int | None, typer.Option(help="Expire after this many days (default: never).")
    ] = None,
) -> None:
    """Print a new editor API token once (only its hash is stored)."""
    from app.db import session_scope
    from app.editors import create_editor_token
    from app.errors import DomainError

    ctx = _setup(migrate=True)
    try:
        with session_scope(ctx.sessions) as session:
            token = create_editor_token(session, name, expires_days=expires_days)
    except DomainError as exc:
        raise _fail(exc) from None
    out.print(token, highlight=False, soft_wrap=True)  # stdout: the token and nothing else
    if sys.stdout.isatty():
        console.print("Keep it now: it is stored only as a hash and cannot be shown again.")
    ctx.close()


# --------------------------------------------------------------------------- editor tokens


@editor_token_cli.command("list")
def editor_token_list() -> None:
    """List editor tokens: id, name, state, created, expires, last used (never the secret)."""
    from app.db import session_scope
    from app.editors import list_editor_tokens, token_state
    from app.models import utcnow

    ctx = _setup(migrate=True)
    with session_scope(ctx.sessions) as session:
        now = utcnow()
        for row in list_editor_tokens(session):
            cells = [
                str(row.id),
                row.name,
                token_state(row, now),
                f"created {row.created_at:%Y-%m-%d}",
                f"expires {row.expires_at:%Y-%m-%d}" if row.expires_at else "no expiry",
                f"used {row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never used",
            ]
            # Plain echo: rich would expand the tabs, and `cut -f` needs them.
            typer.echo("\t".join(cells))
    ctx.close()


@editor_token_cli.command("revoke")
def editor_token_revoke(name_or_id: str) -> None:
    """Revoke the live tokens with this name (or id); scripts using them get 401 at once."""
    from app.db import session_scope
    from app.editors import revoke_editor_token
    from app.errors import DomainError

    ctx = _setup(migrate=True)
    try:
        with session_scope(ctx.sessions) as session:
            count = revoke_editor_token(session, name_or_id)
    except DomainError as exc:
        raise _fail(exc) from None
    console.print(f"revoked {count} token{'s' if count != 1 else ''}")
    ctx.close()


@subscribers_cli.command("import")
def subscribers_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import subscribers from a CSV file with columns email,name (and optionally timezone)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from app.db import session_scope
    from app.errors import DomainError
    from app.models import utcnow
    from app.subscribers.csv_import import import_csv

    ctx = _setup(migrate=True)
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("", total=_count_rows(file))
        try:
            with session_scope(ctx.sessions) as session, file.open("rb") as fh:
                summary = import_csv(
                    session,
                    fh,
                    now=utcnow(),
                    on_progress=lambda n: progress.update(task, completed=n),
                    default_timezone=ctx.settings.default_timezone,
                )
        except DomainError as exc:
            raise _fail(exc) from None
    out.print_json(data=summary.as_dict())
    ctx.close()


def _count_rows(file: Path) -> int:
    """Count data rows cheaply so the progress bar has a total."""
    with file.open("rb") as fh:
        return max(sum(1 for _ in fh) - 1, 0)


@dkim_cli.command("keygen")
def dkim_keygen(
    selector: Annotated[str, typer.Option(help="DKIM selector, e.g. mp2026.")],
    domain: Annotated[str, typer.Option(help="Signing domain (the From domain or a parent).")],
    out: Annotated[Path, typer.Option(help="Where to write the private key (PEM).")] = Path(
        "var/dkim.pem"
    ),
) -> None:
    """Write a 2048-bit DKIM key and print the DNS TXT record to publish."""
    from app.sends.dkim import generate_key

    try:
        record = generate_key(out, selector, domain)
    except FileExistsError:
        typer.echo(
            f"error: {out} exists; refusing to replace a key that may be published", err=True
        )
        raise typer.Exit(1) from None
    out_console = Console(soft_wrap=True)  # the record must be copyable as one line
    out_console.print(record, highlight=False)
    console.print(
        f"Publish the record, then set MORNINGPOST_DKIM_SELECTOR={selector} "
        f"MORNINGPOST_DKIM_DOMAIN={domain} MORNINGPOST_DKIM_PRIVATE_KEY_PATH={out.resolve()}",
        highlight=False,
        soft_wrap=True,
    )


@cli.command("webhook-secret", rich_help_panel=ADMIN)
def webhook_secret_cmd() -> None:
    """Print the secret a relay uses to sign POST /webhooks/bounce (HMAC-SHA256)."""
    from app.sends.verp import webhook_secret

    settings = _settings()
    out.print(webhook_secret(settings), highlight=False, soft_wrap=True)
