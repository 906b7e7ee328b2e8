"""The app served by uvicorn in a thread on a free loopback port, for tests that need real HTTP."""

from __future__ import annotations

import threading
import time

import uvicorn

from app.context import Context
from app.main import create_app


class LiveServer:
    """The app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, ctx: Context, port: int) -> None:
        config = uvicorn.Config(
            create_app(ctx.settings, context=ctx),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
