"""The `morningpost` command: thin wrappers that parse, call a service and print.

Start-up speed: the application (SQLAlchemy, FastAPI, the MJML renderer, premailer, aiosmtpd…)
takes seconds to import, so this module imports only typer and rich at the top and each command
imports what it needs inside its body. `morningpost --help`, a typo or `--help` of one command
answer at once; keep new imports of `app.*` modules inside the commands that use them.

Output: a command prints its result on stdout (an id, a token, a table) and nothing else; log
lines go to stderr at WARNING, or INFO with `--verbose`, and always INFO for the long-running
`serve`, `worker` and `bounces`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from app.cli_editor import editor_cli

if TYPE_CHECKING:
    from app.config import Settings
    from app.context import Context
    from app.errors import DomainError
    from app.issues.schemas import SendStats

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
    from app.config import announce_defaults
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


# --------------------------------------------------------------------------- demo


@cli.command(rich_help_panel=START)
def demo() -> None:
    """Send the sample issue to three demo readers, in a separate demo database under var/demo/.

    Nothing touches the real database or a real relay: the demo has its own SQLite file and
    always uses the capture mailer, which saves each message as an .eml file.
    """
    import secrets

    from app.db import session_scope
    from app.demo import load_demo
    from app.models import utcnow

    real = _settings()
    demo_dir = real.var_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    overrides: dict[str, Any] = {
        "database_url": f"sqlite:///{(demo_dir / 'demo.db').as_posix()}",
        "var_dir": demo_dir,
        "smtp_url": None,  # the capture mailer: demo addresses never reach a relay
    }
    if not real.secret_keys:
        # The demo's own signing key, made quietly (the real one may not exist yet).
        key_file = demo_dir / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48) + "\n")
            key_file.chmod(0o600)
        overrides["secret_keys"] = [key_file.read_text().strip()]
    settings = real.model_copy(update=overrides)
    ctx = _setup(migrate=True, settings=settings, create=True)
    with session_scope(ctx.sessions) as session:
        issue_id, recipients = load_demo(session, ctx.renderer, utcnow())
    _deliver(ctx, [issue_id])
    outbox = settings.outbox_dir.resolve()
    out.print(
        f"issue {issue_id} sent to {recipients} demo readers: the messages are .eml files in "
        f"{outbox}\nTo browse the demo: MORNINGPOST_DATABASE_URL={settings.database_url} "
        f"MORNINGPOST_VAR_DIR={demo_dir} morningpost serve",
        highlight=False,
        soft_wrap=True,
    )
    ctx.close()


# --------------------------------------------------------------------------- sending


@cli.command("dispatch", rich_help_panel=SEND)
def dispatch_cmd(
    wait: Annotated[bool, typer.Option("--wait", help="Deliver in-process until done.")] = False,
) -> None:
    """Start every issue whose send_at has passed (the morning cron entry; safe to run twice)."""
    from app.issues.dispatch import dispatch

    ctx = _setup(migrate=True, announce=True)
    started = dispatch(ctx)
    out.print(f"started {len(started)} issue(s): {', '.join(map(str, started)) or '-'}")
    if wait:
        _deliver(ctx, None)
    ctx.close()


def _deliver(ctx: Context, issue_ids: list[int] | None, settings: Settings | None = None) -> None:
    """Deliver in-process until nothing is due, drawing one progress bar per issue."""
    import asyncio

    from app.delivery import build_worker
    from app.issues.dispatch import deliver_until_done
    from app.sends.smtp.mailer import make_mailer

    worker = build_worker(ctx, make_mailer(settings or ctx.settings, ctx.engine))
    with _progress_display() as on_progress:
        asyncio.run(deliver_until_done(ctx, worker, issue_ids, on_progress=on_progress))


@cli.command(rich_help_panel=SEND)
def status(
    issue_id: Annotated[int | None, typer.Argument(help="The send to follow.")] = None,
    watch: Annotated[bool, typer.Option(help="Follow the send until it ends.")] = True,
) -> None:
    """Show the delivery progress of one issue, with rate and ETA, and the relays' table."""
    import time

    from app.db import session_scope
    from app.errors import DomainError
    from app.issues.service import issue_progress

    ctx = _setup()
    if issue_id is not None:
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
        if stats.pause_reason:
            out.print(f"why: {stats.pause_reason}", highlight=False, soft_wrap=True)
        for alert in stats.alerts:
            out.print(f"alert: {alert}", highlight=False, soft_wrap=True)
    _print_relays(ctx)
    ctx.close()


def _print_relays(ctx: Context) -> None:
    """Print the relay table (GET /relays) when a relay is configured."""
    from rich.table import Table

    from app.db import session_scope
    from app.sends.store.relays import relay_report

    if not ctx.settings.relays:
        out.print("relays: none (the capture mailer keeps every message)", highlight=False)
        return
    with session_scope(ctx.sessions) as session:
        lines = relay_report(session.connection(), ctx.settings.relays)
    table = Table("relay", "state", "sent today", "quota", "rate", "last error", title="Relays")
    for r in lines:
        quota = f"{r.daily} ({r.used_share:.0%})" if r.daily else "-"
        error = f"{r.last_error} ({r.last_error_at:%Y-%m-%d %H:%M} UTC)" if r.last_error_at else "-"
        rate = f"{r.rate:g}/s" if r.rate else "-"
        table.add_row(r.name, r.state, str(r.sent_today), quota, rate, error)
    out.print(table)


@contextlib.contextmanager
def _progress_display() -> Iterator[Callable[[dict[int, SendStats]], None]]:
    """Yield a callback that draws one rich progress bar per issue from its stats."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    columns = (
        TextColumn("issue {task.fields[issue]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        _rate_column(),
    )
    with Progress(*columns, console=console) as progress:
        tasks: dict[int, TaskID] = {}

        def on_progress(all_stats: dict[int, SendStats]) -> None:
            for issue_id, st in all_stats.items():
                detail = f"sent {st.sent} · retry {st.retry} · failed {st.failed}"
                if st.status == "paused":
                    detail += f" · PAUSED: {st.pause_reason or ''}"
                rate, eta = st.rate_per_second, st.eta_seconds
                if issue_id not in tasks:
                    tasks[issue_id] = progress.add_task(
                        "",
                        total=st.recipients or 1,
                        issue=issue_id,
                        detail=detail,
                        rate=rate,
                        eta=eta,
                    )
                progress.update(
                    tasks[issue_id], completed=st.done, detail=detail, rate=rate, eta=eta
                )

        yield on_progress


def _rate_column() -> Any:
    """Messages per second over the last minute and the time left, as the ledger says."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            rate, eta = task.fields.get("rate") or 0, task.fields.get("eta")
            if not rate:
                return Text("")
            left = "" if eta is None else f" · {int(eta) // 60}:{int(eta) % 60:02d} left"
            return Text(f"{rate:,.0f} msg/s{left}")

    return RateColumn()


# --------------------------------------------------------------------------- servers


@cli.command(rich_help_panel=RUN)
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Apply migrations, then serve the HTTP API with a delivery worker in the same process."""
    import uvicorn

    from app.config import follow_listen_address
    from app.logs import uvicorn_log_config
    from app.main import create_app

    ctx = _setup(migrate=True, daemon=True, create=True)
    follow_listen_address(ctx.settings, host, port)  # links follow --host/--port unless set
    app = create_app(ctx.settings, context=ctx)
    log_config = uvicorn_log_config(ctx.settings.log_format)
    # Forwarded headers are judged by app.web.proxies (MORNINGPOST_TRUSTED_PROXIES), not uvicorn.
    uvicorn.run(
        app, host=host, port=port, log_level="info", log_config=log_config, proxy_headers=False
    )
    ctx.close()


@cli.command(rich_help_panel=RUN)
def worker() -> None:
    """Run a delivery worker alone (several may share one PostgreSQL)."""
    import uvloop

    from app.sends.worker import DatabaseUnavailable

    ctx = _setup(daemon=True)
    try:
        # uvloop: the worker's event loop is its bottleneck at full speed (bench/throughput.py).
        uvloop.run(_run_worker(ctx))
    except DatabaseUnavailable as exc:
        typer.echo(f"error: worker stopped: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        ctx.close()


async def _run_worker(ctx: Context) -> None:
    import asyncio
    import signal

    from app.automations.feeds import run_feed_poller
    from app.automations.scheduler import run_automations
    from app.bounces.mailbox import run_bounce_mailbox
    from app.delivery import build_worker
    from app.metrics.worker_endpoint import serve_worker_metrics
    from app.webhooks.sender import run_webhook_sender

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Graceful: the worker finishes the message in hand and releases the rest.
        loop.add_signal_handler(sig, stop.set)
    # The webhook sender (and the heartbeat) runs next to the delivery worker.
    await asyncio.gather(
        build_worker(ctx).run(stop),
        run_webhook_sender(ctx, stop),
        run_bounce_mailbox(ctx, stop),  # MORNINGPOST_BOUNCE_MAILBOX, polled every minute
        run_feed_poller(ctx, stop),  # RSS/Atom feeds into issues
        run_automations(ctx, stop),  # sequence steps that fell due, A/B decisions
        serve_worker_metrics(ctx, stop),  # MORNINGPOST_WORKER_METRICS_PORT
    )


@cli.command(rich_help_panel=RUN)
def bounces(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (point the bounce domain's MX here).")] = 2525,
) -> None:
    """Receive DSN bounces and ARF complaints over SMTP (aiosmtpd) and record them."""
    import asyncio

    from app.bounces.listener import run_bounce_listener

    ctx = _setup(migrate=True, daemon=True)
    console.print(f"bounce listener on {host}:{port} for bounces+…@{ctx.settings.verp_domain}")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_bounce_listener(ctx, host, port))
    ctx.close()


# --------------------------------------------------------------------------- admin


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


# --------------------------------------------------------------------------- issues


@issues_cli.command("create")
def issues_create(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The issue: FILE.md or FILE.json.")
    ],
) -> None:
    """Create a draft issue from a Markdown or JSON file; print its id."""
    from app.db import session_scope
    from app.errors import DomainError
    from app.issues.service import create_issue

    issue_in = _read_issue_file(file)
    ctx = _setup(migrate=True)
    try:
        with session_scope(ctx.sessions) as session:
            issue_id = create_issue(session, issue_in, ctx.renderer).id
    except DomainError as exc:
        raise _fail(exc) from None
    out.print(issue_id)
    ctx.close()


def _read_issue_file(file: Path) -> Any:
    """Read FILE.md (Markdown with front matter) or FILE.json (the API's body) as an IssueIn."""
    from pydantic import ValidationError

    from app.errors import InvalidInput
    from app.issues.markdown_format import parse_issue_markdown
    from app.issues.schemas import IssueIn

    try:
        text = file.read_text("utf-8")
    except UnicodeDecodeError:
        raise _usage(f"{file} is not UTF-8 text") from None
    suffix = file.suffix.lower()
    try:
        if suffix in (".md", ".markdown"):
            return parse_issue_markdown(text)
        if suffix == ".json":
            return IssueIn.model_validate_json(text)
    except InvalidInput as exc:
        raise _usage(f"{file}: {exc.message}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise _usage(f"{file}: {where + ': ' if where else ''}{err['msg']}") from None
    raise _usage(f"{file}: expected a .md or .json file")


@issues_cli.command("list")
def issues_list(
    status_filter: Annotated[
        str | None, typer.Option("--status", help="Only issues in this status, e.g. draft.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List issues, newest first: id, status, recipients, send time, subject."""
    from app.db import session_scope
    from app.errors import DomainError
    from app.issues.schemas import IssueOut
    from app.issues.service import list_issues

    ctx = _setup()
    try:
        with session_scope(ctx.sessions) as session:
            issues = [IssueOut.model_validate(i) for i in list_issues(session, status_filter)]
    except DomainError as exc:
        raise _fail(exc) from None
    ctx.close()
    if as_json:
        fields = ("id", "slug", "subject", "status", "recipients", "send_at", "finished_at")
        rows = [i.model_dump(mode="json", include=set(fields)) for i in issues]
        out.print_json(data=rows)
        return
    if not issues:
        console.print("no issues yet: morningpost issues create FILE.md")
        return
    lines = [("ID", "STATUS", "RECIPIENTS", "SEND AT (UTC)", "SUBJECT")]
    for i in issues:
        when = i.send_at.strftime("%Y-%m-%d %H:%M") if i.send_at else "-"
        lines.append((str(i.id), i.status, str(i.recipients), when, i.subject))
    # Plain aligned columns, one line per issue: readable, and easy to grep or cut.
    widths = [max(len(r[c]) for r in lines) for c in range(4)]
    for r in lines:
        cells = [r[0].rjust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2])]
        typer.echo("  ".join([*cells, r[3].ljust(widths[3]), r[4]]))


@issues_cli.command("send")
def issues_send(
    issue_id: int,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Schedule for this moment (ISO 8601; no offset means UTC)."),
    ] = None,
    local_time: Annotated[
        str | None,
        typer.Option("--local-time", help="Each reader's wall-clock time, HH:MM (with --date)."),
    ] = None,
    date: Annotated[
        str | None, typer.Option("--date", help="The day of a --local-time send, YYYY-MM-DD.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Deliver now, in this process, with a progress bar.")
    ] = False,
) -> None:
    """Send an issue now, at a time (--at), or at a local time per reader (--local-time)."""
    from app.errors import InvalidInput
    from app.issues.schemas import read_send_in

    try:
        # The API's own reading of the send (app.issues.schemas.SendIn), in its own words.
        data = read_send_in(send_at=at, local_time=local_time, date=date)
    except InvalidInput as exc:
        raise _usage(exc.message) from None

    from app.db import session_scope
    from app.errors import DomainError
    from app.issues.service import send_issue
    from app.models import utcnow

    ctx = _setup(migrate=True, announce=True)
    try:
        with session_scope(ctx.sessions) as session:
            result = send_issue(session, issue_id, data, utcnow(), ctx.renderer)
    except DomainError as exc:
        raise _fail(exc) from None
    if data.local_time is not None:
        first = result["send_at"].strftime("%Y-%m-%d %H:%M UTC")
        out.print(
            f"issue {issue_id} goes to {result['recipients']} readers at {local_time} their time "
            f"on {date} (the first at {first}; readers whose moment has passed get it at once)",
            highlight=False,
            soft_wrap=True,
        )
    elif result["status"] == "scheduled":
        when = result["send_at"].strftime("%Y-%m-%d %H:%M UTC")
        out.print(f"issue {issue_id} scheduled for {when}", highlight=False)
        if wait:
            console.print("--wait: nothing to deliver before the scheduled time")
    else:
        out.print(f"issue {issue_id} sending to {result['recipients']} readers", highlight=False)
        if wait:
            _deliver(ctx, [issue_id])
            _print_final(ctx, issue_id)
        else:
            console.print(
                "a running `morningpost serve` or `morningpost worker` delivers it; "
                f"follow it with `morningpost status {issue_id}`"
            )
    ctx.close()


def _print_final(ctx: Context, issue_id: int) -> None:
    from app.db import session_scope
    from app.issues.service import issue_progress

    with session_scope(ctx.sessions) as session:
        status_name, st = issue_progress(session, issue_id)
    out.print(
        f"issue {issue_id}: {status_name} · sent {st.sent} · failed {st.failed}"
        f" · unknown {st.unknown}",
        highlight=False,
    )


def main() -> None:
    """Entry point of the console script."""
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
