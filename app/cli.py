"""The `morningpost` command: thin wrappers that parse, call a service and print."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
import uvloop
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.text import Text

from app.bounces.listener import run_bounce_listener
from app.bounces.verp import webhook_secret
from app.cli_editor import editor_cli
from app.config import ConfigError, announce_defaults, load_settings
from app.context import Context, build_context
from app.db import session_scope
from app.delivery.dispatch import deliver_until_done, dispatch
from app.delivery.dkim import generate_key
from app.delivery.engine import Worker
from app.delivery.mailer import make_mailer
from app.demo import load_demo
from app.editors import create_editor_token
from app.errors import DomainError
from app.issues.service import issue_progress
from app.main import create_app
from app.migrate import upgrade_head
from app.models import utcnow
from app.subscribers.csv_import import import_csv

cli = typer.Typer(help="Morning Post: self-hosted newsletter delivery.", no_args_is_help=True)
editor_token_cli = typer.Typer(help="Editor API tokens.", no_args_is_help=True)
subscribers_cli = typer.Typer(help="Subscriber list tools.", no_args_is_help=True)
cli.add_typer(editor_token_cli, name="editor-token")
cli.add_typer(subscribers_cli, name="subscribers")
dkim_cli = typer.Typer(help="DKIM signing keys.", no_args_is_help=True)
cli.add_typer(dkim_cli, name="dkim")
cli.add_typer(editor_cli, name="editor")

console = Console(stderr=True)
out = Console()


class RateColumn(ProgressColumn):
    """Messages per second over the last minute and the time left, as the ledger says."""

    def render(self, task: Task) -> Text:
        """Draw the rate and the ETA."""
        rate, eta = task.fields.get("rate") or 0, task.fields.get("eta")
        if not rate:
            return Text("")
        left = "" if eta is None else f" · {int(eta) // 60}:{int(eta) % 60:02d} left"
        return Text(f"{rate:,.0f} msg/s{left}")


def _setup(*, migrate: bool = False) -> Context:
    """Read settings (one clear line and exit 2 on a bad value) and build the context."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings()
    except ConfigError as exc:
        # Plain echo, not rich: one line however narrow the terminal is.
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    announce_defaults(settings)
    ctx = build_context(settings)
    if migrate:
        upgrade_head(ctx.engine)
    return ctx


def _fail(exc: DomainError) -> typer.Exit:
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(1)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Apply migrations, then serve the HTTP API with a delivery worker in the same process."""
    ctx = _setup(migrate=True)
    app = create_app(ctx.settings, context=ctx)
    uvicorn.run(app, host=host, port=port, log_level="info")
    ctx.close()


@cli.command()
def worker() -> None:
    """Run a delivery worker alone (several may share one PostgreSQL)."""
    ctx = _setup()
    # uvloop: the worker's event loop is its bottleneck at full speed (see bench/throughput.py).
    uvloop.run(_run_worker(ctx))
    ctx.close()


async def _run_worker(ctx: Context) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Graceful: the worker finishes the message in hand and releases the rest.
        loop.add_signal_handler(sig, stop.set)
    await Worker(ctx, make_mailer(ctx.settings)).run(stop)


@cli.command("dispatch")
def dispatch_cmd(
    wait: Annotated[bool, typer.Option("--wait", help="Deliver in-process until done.")] = False,
) -> None:
    """Start every issue whose send_at has passed (the morning cron entry; safe to run twice)."""
    ctx = _setup(migrate=True)
    started = dispatch(ctx)
    out.print(f"started {len(started)} issue(s): {', '.join(map(str, started)) or '-'}")
    if wait:
        with _progress_display() as on_progress:
            mailer = make_mailer(ctx.settings)
            asyncio.run(deliver_until_done(ctx, mailer, None, on_progress=on_progress))
    ctx.close()


@cli.command()
def status(
    issue_id: int,
    watch: Annotated[bool, typer.Option(help="Follow the send until it ends.")] = True,
) -> None:
    """Show the delivery progress of one issue, with rate and ETA."""
    ctx = _setup()
    with _progress_display() as on_progress:
        while True:
            try:
                with session_scope(ctx.sessions) as session:
                    status_name, stats = issue_progress(session, issue_id)
            except DomainError as exc:
                raise _fail(exc) from None
            on_progress({issue_id: stats})
            if not watch or status_name != "sending":
                break
            time.sleep(1.0)
    out.print(f"issue {issue_id}: {status_name}", highlight=False)
    ctx.close()


@contextlib.contextmanager
def _progress_display() -> Iterator[Callable[[dict[int, dict[str, Any]]], None]]:
    """Yield a callback that draws one rich progress bar per issue from its stats."""
    columns = (
        TextColumn("issue {task.fields[issue]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        RateColumn(),
    )
    with Progress(*columns, console=console) as progress:
        tasks: dict[int, TaskID] = {}

        def on_progress(all_stats: dict[int, dict[str, Any]]) -> None:
            for issue_id, st in all_stats.items():
                done = st["sent"] + st["failed"] + st["unknown"] + st["cancelled"]
                detail = f"sent {st['sent']} · retry {st['retry']} · failed {st['failed']}"
                if st.get("status") == "paused":
                    detail += f" · PAUSED: {st.get('pause_reason') or ''}"
                rate, eta = st.get("rate_per_second"), st.get("eta_seconds")
                if issue_id not in tasks:
                    tasks[issue_id] = progress.add_task(
                        "",
                        total=st["recipients"] or 1,
                        issue=issue_id,
                        detail=detail,
                        rate=rate,
                        eta=eta,
                    )
                progress.update(tasks[issue_id], completed=done, detail=detail, rate=rate, eta=eta)

        yield on_progress


@cli.command()
def demo() -> None:
    """Send the sample issue of The AI Morning Post to three demo readers, into ./var/outbox/."""
    ctx = _setup(migrate=True)
    # Always the capture mailer: demo addresses must never reach a real relay.
    settings = ctx.settings.model_copy(update={"smtp_url": None})
    with session_scope(ctx.sessions) as session:
        issue_id, recipients = load_demo(session, ctx.renderer, utcnow())
    with _progress_display() as on_progress:
        asyncio.run(
            deliver_until_done(ctx, make_mailer(settings), [issue_id], on_progress=on_progress)
        )
    out.print(
        f"issue {issue_id} sent to {recipients} demo readers; open the .eml files in "
        f"{settings.outbox_dir.resolve()}, or see /archive once `morningpost serve` runs",
        highlight=False,
    )
    ctx.close()


@cli.command()
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    ctx = _setup(migrate=True)
    out.print("database is at the latest migration")
    ctx.close()


@editor_token_cli.command("create")
def editor_token_create(name: str) -> None:
    """Print a new editor API token once (only its hash is stored)."""
    ctx = _setup(migrate=True)
    try:
        with session_scope(ctx.sessions) as session:
            token = create_editor_token(session, name)
    except DomainError as exc:
        raise _fail(exc) from None
    out.print(token, highlight=False)
    console.print("Keep it now: it is stored only as a hash and cannot be shown again.")
    ctx.close()


@subscribers_cli.command("import")
def subscribers_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import subscribers from a CSV file with columns email,name."""
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
                    on_chunk=session.commit,  # chunk by chunk: a huge file never waits whole
                    on_progress=lambda n: progress.update(task, completed=n),
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


@cli.command()
def bounces(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (point the bounce domain's MX here).")] = 2525,
) -> None:
    """Receive DSN bounces and ARF complaints over SMTP (aiosmtpd) and record them."""
    ctx = _setup(migrate=True)
    console.print(f"bounce listener on {host}:{port} for bounces+…@{ctx.settings.verp_domain}")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_bounce_listener(ctx, host, port))
    ctx.close()


@cli.command("webhook-secret")
def webhook_secret_cmd() -> None:
    """Print the secret a relay uses to sign POST /webhooks/bounce (HMAC-SHA256)."""
    ctx = _setup()
    out.print(webhook_secret(ctx.settings), highlight=False)
    ctx.close()


def main() -> None:
    """Entry point of the console script."""
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
