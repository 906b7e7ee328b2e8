"""The long-running commands: `serve`, `worker` and `bounces`."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.base import RUN, _setup, cli, console

if TYPE_CHECKING:
    from app.context import Context


@cli.command(rich_help_panel=RUN)
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Apply migrations, then serve the HTTP API with a delivery worker in the same process."""
    import uvicorn

    from app.config.startup import follow_listen_address
    from app.logs import uvicorn_log_config
    from app.main import create_app

    ctx = _setup(migrate=True, daemon=True, create=True)
    follow_listen_address(ctx.settings, host, port)  # links follow --host/--port unless set
    app = create_app(ctx.settings, context=ctx)
    log_config = uvicorn_log_config(ctx.settings.log_format)
    _freeze_startup_heap()
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

    worker = build_worker(ctx)
    _freeze_startup_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Graceful: the worker finishes the message in hand and releases the rest.
        loop.add_signal_handler(sig, stop.set)
    # The webhook sender (and the heartbeat) runs next to the delivery worker.
    await asyncio.gather(
        worker.run(stop),
        run_webhook_sender(ctx, stop),
        run_bounce_mailbox(ctx, stop),  # MORNINGPOST_BOUNCE_MAILBOX, polled every minute
        run_feed_poller(ctx, stop),  # RSS/Atom feeds into issues
        run_automations(ctx, stop),  # sequence steps that fell due, A/B decisions
        serve_worker_metrics(ctx, stop),  # MORNINGPOST_WORKER_METRICS_PORT
    )


def _freeze_startup_heap() -> None:
    """Take what start-up built (modules, the app, the worker) out of the collector's scans.

    Those objects live as long as the process; a full collection walked all of them (about
    190,000 in the worker: 60-110 ms with the loop held, a stall on every connection, seen in
    bench/throughput.py) to find nothing. Frozen, it walks only what came after: 9 ms.
    """
    import gc

    gc.collect()
    gc.freeze()


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
