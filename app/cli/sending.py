"""`morningpost dispatch` and `status`: start due issues, follow a send."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.base import SEND, _fail, _setup, cli, out
from app.cli.progress import _deliver, _print_relays, _progress_display


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
