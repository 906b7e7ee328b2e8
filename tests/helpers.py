"""Small helpers the tests share: subscribers in bulk, a worker run, a minimal issue."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from app.context import Context
from app.db import session_scope
from app.delivery import build_worker
from app.models import Subscriber, SubscriberStatus, utcnow
from app.tokens import hash_secret

SIMPLE_BLOCKS: list[dict[str, Any]] = [
    {"type": "lead", "kicker": "Today", "title": "Hello readers", "body": "First **issue**."},
    {"type": "links", "title": "Read", "items": [{"title": "A", "url": "https://example.org/a"}]},
]


def add_subscribers(
    ctx: Context, count: int, status: str = SubscriberStatus.active, domain: str = "example.org"
) -> list[int]:
    """Insert `count` subscribers (reader0@domain …) and return their ids."""
    now = utcnow()
    with session_scope(ctx.sessions) as session:
        rows = [
            Subscriber(
                email=f"reader{i}@{domain}",
                email_hash=hash_secret(f"reader{i}@{domain}"),
                name=f"Reader {i}",
                status=status,
                consent_source="test",
                confirmed_at=now if status == SubscriberStatus.active else None,
            )
            for i in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def run_worker(ctx: Context) -> None:
    """Deliver everything that is due now, in-process, against the test SMTP server."""
    asyncio.run(build_worker(ctx).run_until_idle())


def new_issue(client: Any, editor: dict[str, str], **fields: Any) -> dict[str, Any]:
    """Create an issue through the API and return its JSON."""
    body = {"subject": "The AI Morning Post", "blocks": SIMPLE_BLOCKS, **fields}
    resp = client.post("/issues", json=body, headers=editor)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def cli_env(settings: Any) -> dict[str, str]:
    """Return an environment that points a `morningpost` subprocess at this test's setup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MORNINGPOST_")}
    env.update(
        MORNINGPOST_DATABASE_URL=settings.database_url,
        MORNINGPOST_SMTP_URL=settings.smtp_url or "",
        MORNINGPOST_BASE_URL=settings.base_url,
        MORNINGPOST_SECRET_KEYS=",".join(settings.secret_keys),
        MORNINGPOST_FROM=settings.from_address,
        MORNINGPOST_VAR_DIR=str(settings.var_dir),
        MORNINGPOST_RETRY_BACKOFF_SECONDS=str(settings.retry_backoff_seconds),
        MORNINGPOST_POLL_INTERVAL_SECONDS=str(settings.poll_interval_seconds),
        MORNINGPOST_SMTP_TIMEOUT_SECONDS=str(settings.smtp_timeout_seconds),
        MORNINGPOST_BATCH_SIZE=str(settings.batch_size),
    )
    return env


ROOT = Path(__file__).resolve().parents[1]


def start_worker(settings: Any, cwd: Path, **env: str) -> subprocess.Popen[bytes]:
    """Start `python -m app worker` against this test's database and SMTP server.

    Short leases and no retry backoff, so crash and lease tests run in seconds; `env`
    overrides any of it. cwd should be a temporary folder: no stray .env from the repository.
    """
    full = {
        **cli_env(settings),
        "PYTHONPATH": str(ROOT),
        "MORNINGPOST_POLL_INTERVAL_SECONDS": "0.05",
        "MORNINGPOST_RETRY_BACKOFF_SECONDS": "0",
        "MORNINGPOST_LEASE_SECONDS": "5",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app", "worker"],
        env=full,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def nonce_of(ctx: Context, subscriber_id: int) -> str:
    """Return the list-token nonce of a subscriber (part of their unsubscribe/preferences links)."""
    with session_scope(ctx.sessions) as session:
        return session.get_one(Subscriber, subscriber_id).token_nonce


def deliver_in_thread(ctx: Context, timeout: float = 120) -> None:
    """Run the worker until idle in its own thread: sync Playwright owns this thread's loop."""
    failure: list[BaseException] = []

    def work() -> None:
        try:
            run_worker(ctx)
        except BaseException as exc:  # handed back to the test below
            failure.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=timeout)
    if failure:
        raise failure[0]
