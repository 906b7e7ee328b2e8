"""Gauges computed from the database at scrape time, so they are right whichever process sends."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.metrics.process import REGISTRY as PROCESS_REGISTRY
from app.models import (
    Delivery,
    DeliveryStatus,
    Heartbeat,
    Issue,
    IssueStatus,
    OutboxMessage,
    Subscriber,
    SubscriberStatus,
    WebhookDelivery,
    WebhookDeliveryStatus,
    utcnow,
)

ALIVE_SECONDS = 60  # a heartbeat younger than this counts the process as alive


def _by_status(
    session: Session, column: object, statuses: Iterable[str], name: str, doc: str
) -> GaugeMetricFamily:
    """One GROUP BY, every known status present (zeros included)."""
    counts = dict.fromkeys(statuses, 0)
    for status, n in session.execute(select(column, func.count()).group_by(column)):  # type: ignore[call-overload]
        counts[str(status)] = counts.get(str(status), 0) + int(n)
    family = GaugeMetricFamily(name, doc, labels=["status"])
    for status, n in counts.items():
        family.add_metric([status], n)
    return family


class DatabaseCollector(Collector):
    """Read the ledger, the lists and the heartbeats on every scrape."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def describe(self) -> list[Metric]:
        """Describe nothing up front: registering must not touch the database."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges; a database failure becomes morningpost_database_up 0."""
        up = GaugeMetricFamily("morningpost_database_up", "1 when the scrape could read the DB")
        try:
            with session_scope(self.sessions) as session:
                families = list(self._families(session))
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, session: Session) -> Iterator[Metric]:
        now = utcnow()
        yield _by_status(
            session,
            Delivery.status,
            [s.value for s in DeliveryStatus],
            "morningpost_deliveries",
            "Rows of the delivery ledger by status, all issues",
        )
        due = or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)
        depth = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .join(Issue, Issue.id == Delivery.issue_id)
            .where(
                Issue.status == IssueStatus.sending,
                Delivery.status.in_([DeliveryStatus.pending, DeliveryStatus.retry]),
                due,
            )
        )
        queue = GaugeMetricFamily(
            "morningpost_queue_depth", "Deliveries due now (pending or retry) of sending issues"
        )
        queue.add_metric([], int(depth or 0))
        yield queue
        yield _by_status(
            session,
            OutboxMessage.status,
            [s.value for s in DeliveryStatus],
            "morningpost_outbox",
            "Confirmation and test emails by status",
        )
        yield _by_status(
            session,
            Issue.status,
            [s.value for s in IssueStatus],
            "morningpost_issues",
            "Issues by status",
        )
        yield _by_status(
            session,
            Subscriber.status,
            [s.value for s in SubscriberStatus],
            "morningpost_subscribers",
            "Subscribers by status",
        )
        yield _by_status(
            session,
            WebhookDelivery.status,
            [s.value for s in WebhookDeliveryStatus],
            "morningpost_webhook_deliveries",
            "Outbound webhook events by status",
        )
        yield from self._heartbeats(session, now)

    def _heartbeats(self, session: Session, now: datetime) -> Iterator[Metric]:
        newest, alive = session.execute(
            select(
                func.max(Heartbeat.beat_at),
                func.count().filter(Heartbeat.beat_at >= now - timedelta(seconds=ALIVE_SECONDS)),
            )
        ).one()
        workers = GaugeMetricFamily(
            "morningpost_workers_alive",
            f"Worker processes whose background loop beat in the last {ALIVE_SECONDS} s",
        )
        workers.add_metric([], int(alive or 0))
        yield workers
        if newest is not None:
            age = GaugeMetricFamily(
                "morningpost_worker_heartbeat_age_seconds",
                "Seconds since the youngest worker heartbeat (absent: no worker ever ran)",
            )
            age.add_metric([], max(0.0, (now - newest).total_seconds()))
            yield age


class _ProcessMetrics(Collector):
    """Expose the per-process counters inside an app's own registry."""

    def collect(self) -> Iterator[Metric]:
        """Yield this process's counters and histograms."""
        yield from PROCESS_REGISTRY.collect()


def build_registry(sessions: sessionmaker[Session]) -> CollectorRegistry:
    """Return a registry for one app: database gauges, process counters, process CPU/memory."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(sessions))
    registry.register(_ProcessMetrics())
    ProcessCollector(registry=registry)
    return registry
