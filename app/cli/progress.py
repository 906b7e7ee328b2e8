"""Drawing a send's progress: in-process delivery with bars, the relay table, the last line."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from app.cli.base import console, out

if TYPE_CHECKING:
    from app.config import Settings
    from app.context import Context
    from app.issues.schemas import SendStats


def _deliver(ctx: Context, issue_ids: list[int] | None, settings: Settings | None = None) -> None:
    """Deliver in-process until nothing is due, drawing one progress bar per issue."""
    import asyncio

    from app.delivery import build_worker
    from app.issues.dispatch import deliver_until_done
    from app.sends.smtp.mailer import make_mailer

    worker = build_worker(ctx, make_mailer(settings or ctx.settings, ctx.engine))
    with _progress_display() as on_progress:
        asyncio.run(deliver_until_done(ctx, worker, issue_ids, on_progress=on_progress))


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
