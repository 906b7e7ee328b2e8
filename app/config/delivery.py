"""Delivery tuning: connections, batches, rates, leases, retries and a send's self-pause."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from app.config import parsing


class DeliverySettings(BaseModel):
    """How fast and how carefully the workers hand messages to the relays."""

    smtp_connections: int = Field(default=4, ge=1, le=64)
    # Requests doing database work at once; more wait their turn (app.routing). The thread and
    # database pools are sized from it (app.db.pool_options).
    web_concurrency: int = Field(default=8, ge=1, le=256)
    batch_size: int = Field(default=200, ge=1, le=10_000)
    rate_per_second: float = Field(default=0.0, ge=0)  # 0 = as fast as the relay allows
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    # Renewed every third of it while the worker lives; a dead worker's rows come back after it.
    lease_seconds: int = Field(default=60, ge=5)
    retry_backoff_seconds: float = Field(default=60.0, ge=0)
    max_attempts: int = Field(default=8, ge=1)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Rows handed to SMTP and not yet recorded, at most: all that a crash can leave `unknown`.
    # 0 = 2 x SMTP_CONNECTIONS (the messages on the wire and the next group). A larger window
    # means fewer database commits per message (faster) and more `unknown` after a crash.
    handover_window: int = Field(default=0, ge=0, le=10_000)
    # A worker whose database stays unreachable this long exits (status 1) for its supervisor.
    worker_give_up_seconds: float = Field(default=300.0, gt=0)
    # Dead: results are written with every hand-over group (the crash window is the hand-over
    # window). Still accepted, whatever its value, so old .env files load; start-up warns.
    flush_every: int | str | None = None
    # Per-recipient-domain limits, messages/s: "gmail.com=20,yahoo.com=10"; other domains get
    # DOMAIN_RATE_DEFAULT (0 = no per-domain limit). Each worker enforces its own share.
    domain_rates: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    domain_rate_default: float = Field(default=0.0, ge=0)
    # A send pauses itself when this share of its last PAUSE_WINDOW results are errors.
    pause_error_rate: float = Field(default=0.5, gt=0, le=1)
    pause_window: int = Field(default=200, ge=10)
    # A relay that refuses, fails TLS or login, or throttles (421, 4.7.x) rests this long,
    # doubling with each failure in a row (at most 15 minutes), while the others carry on.
    relay_rest_seconds: float = Field(default=30.0, gt=0)
    run_worker: bool = True  # `serve` runs a delivery worker in-process unless this is off

    _split_domain_rates = field_validator("domain_rates", mode="before")(parsing.split_domain_rates)
