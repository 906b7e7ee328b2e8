"""Prometheus metrics: per-process counters (process.py) and ledger gauges read at scrape time."""

from app.metrics.process import (
    claim_latency,
    claim_observed,
    confirmed,
    handover_committed,
    handover_waited,
    relay_result,
    relay_state,
    signed_up,
    smtp_observed,
    smtp_result,
    webhook_post,
)

__all__ = [
    "claim_latency",
    "claim_observed",
    "confirmed",
    "handover_committed",
    "handover_waited",
    "relay_result",
    "relay_state",
    "signed_up",
    "smtp_observed",
    "smtp_result",
    "webhook_post",
]
