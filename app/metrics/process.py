"""Per-process counters and histograms, fed by one-line hooks in the send path and services.

They live in a registry of their own (never prometheus_client's global one), so several apps in
one process, as in the tests, each expose them without a duplicate-registration error.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

SMTP_RESULTS = Counter(
    "morningpost_smtp_results",
    "SMTP transactions by the class of their final reply (2xx, 4xx, 5xx, unknown)",
    ["class"],
    registry=REGISTRY,
)
SMTP_TEMPORARY = Counter(
    "morningpost_smtp_temporary_failures",
    "4xx results by reason: connection, rate_limited, mailbox, greylisted, other",
    ["reason"],
    registry=REGISTRY,
)
SMTP_SECONDS = Histogram(
    "morningpost_smtp_transaction_seconds",
    "Time from MAIL FROM to the final reply of one message (connect included when needed)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
CLAIM_SECONDS = Histogram(
    "morningpost_claim_seconds",
    "Time to claim one batch of deliveries from the ledger (the database round trip)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
# A commit and a wait at the 354 are both a fraction of a millisecond to a second.
HANDOVER_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
HANDOVER_COMMIT_SECONDS = Histogram(
    "morningpost_handover_commit_seconds",
    "Time of one commit that records results and hands the next rows over to the relay",
    buckets=HANDOVER_BUCKETS,
    registry=REGISTRY,
)
HANDOVER_WAIT_SECONDS = Histogram(
    "morningpost_handover_wait_seconds",
    "Time a connection stood at the relay's 354, content ready, waiting for its hand-over commit",
    buckets=HANDOVER_BUCKETS,
    registry=REGISTRY,
)
CLAIMED = Counter(
    "morningpost_claimed_deliveries", "Deliveries claimed by this process", registry=REGISTRY
)
SIGNUPS = Counter(
    "morningpost_signups",
    "Sign-ups that queued a confirmation email (new or returning addresses)",
    registry=REGISTRY,
)
CONFIRMATIONS = Counter(
    "morningpost_confirmations", "Subscriptions confirmed by their reader", registry=REGISTRY
)
WEBHOOK_POSTS = Counter(
    "morningpost_webhook_posts",
    "Outbound webhook POSTs by result: delivered, failed, refused",
    ["result"],
    registry=REGISTRY,
)

RELAY_RESULTS = Counter(
    "morningpost_relay_results",
    "SMTP transactions per relay by the class of their final reply (2xx, 4xx, 5xx, unknown)",
    ["relay", "class"],
    registry=REGISTRY,
)
RELAY_UP = Gauge(
    "morningpost_relay_up",
    "1 while this process may send over the relay, 0 while it rests or its daily quota is used",
    ["relay"],
    registry=REGISTRY,
)

REASONS = ("connection", "rate_limited", "mailbox", "greylisted", "other")
# A reply code at the start of the reply, possibly after our own "connect: " style prefix.
_CODE = re.compile(r"^(?:[a-z ]{1,20}: )?([245])(\d\d)\b")
_RATE = re.compile(r"rate|too many|throttl|4\.7\.28|slow down", re.IGNORECASE)
_MAILBOX = re.compile(r"4\.2\.2|mailbox|quota|storage", re.IGNORECASE)
_GREY = re.compile(r"gr[ae]y", re.IGNORECASE)


class _Result(Protocol):
    @property
    def outcome(self) -> str: ...

    @property
    def reply(self) -> str: ...


R = TypeVar("R", bound=_Result)


def classify(outcome: str, reply: str) -> tuple[str, str | None]:
    """Return (class, 4xx reason or None) of one SMTP result."""
    match = _CODE.match(reply)
    if outcome == "unknown":
        return "unknown", None
    if match is None:
        # No reply code: nothing reached a relay's verdict (connection trouble, our own error).
        if outcome == "sent":
            return "2xx", None
        if outcome == "failed":
            return "5xx", None
        return "4xx", "connection"
    klass = match.group(1) + "xx"
    if klass != "4xx":
        return klass, None
    if _RATE.search(reply) or match.group(0).endswith("421"):
        return klass, "rate_limited"
    if _MAILBOX.search(reply):
        return klass, "mailbox"
    if _GREY.search(reply):
        return klass, "greylisted"
    return klass, "other"


def smtp_result(outcome: str, reply: str, seconds: float) -> None:
    """Count one SMTP result and time its transaction."""
    if outcome == "sent" and reply[:1] == "2":  # nearly every message: no regex, one child
        _sent_child().inc()
        SMTP_SECONDS.observe(seconds)
        return
    klass, reason = classify(outcome, reply)
    SMTP_RESULTS.labels(klass).inc()
    if reason is not None:
        SMTP_TEMPORARY.labels(reason).inc()
    SMTP_SECONDS.observe(seconds)


@functools.cache
def _sent_child() -> Any:
    return SMTP_RESULTS.labels("2xx")


def smtp_observed(result: R, started: float) -> R:
    """Record a result begun at perf_counter() `started` and hand it back (a hook in transmit)."""
    smtp_result(str(result.outcome), result.reply, time.perf_counter() - started)
    return result


def relay_result(relay: str, outcome: str, reply: str) -> None:
    """Count one result of a relay."""
    if outcome == "sent" and reply[:1] == "2":
        _relay_sent(relay).inc()
        return
    RELAY_RESULTS.labels(relay, classify(outcome, reply)[0]).inc()


@functools.cache
def _relay_sent(relay: str) -> Any:
    RELAY_UP.labels(relay).set(1)
    return RELAY_RESULTS.labels(relay, "2xx")


def relay_state(relay: str, *, up: bool) -> None:
    """Say whether this process may send over the relay now."""
    RELAY_UP.labels(relay).set(1 if up else 0)


def claim_latency(seconds: float, claimed: int = 0) -> None:
    """Time one claim and count the rows it took."""
    CLAIM_SECONDS.observe(seconds)
    CLAIMED.inc(claimed)


def handover_committed(seconds: float) -> None:
    """Time one commit of results and hand-overs (a hook where a stream commits)."""
    HANDOVER_COMMIT_SECONDS.observe(seconds)


def handover_waited(seconds: float) -> None:
    """Record how long a connection waited at the 354 for its row's hand-over."""
    HANDOVER_WAIT_SECONDS.observe(seconds)


def claim_observed(started: float, claimed: int) -> None:
    """Record a claim begun at perf_counter() `started` (a hook where batches are claimed)."""
    claim_latency(time.perf_counter() - started, claimed)


def signed_up() -> None:
    """Count a sign-up that queued a confirmation email."""
    SIGNUPS.inc()


def confirmed() -> None:
    """Count a confirmed subscription."""
    CONFIRMATIONS.inc()


def webhook_post(result: str) -> None:
    """Count one outbound webhook POST by its result."""
    WEBHOOK_POSTS.labels(result).inc()


def _init_labels() -> None:
    # Every series exists from the start, so rate() sees the first increment.
    for klass in ("2xx", "4xx", "5xx", "unknown"):
        SMTP_RESULTS.labels(klass)
    for reason in REASONS:
        SMTP_TEMPORARY.labels(reason)
    for result in ("delivered", "failed", "refused"):
        WEBHOOK_POSTS.labels(result)


_init_labels()
