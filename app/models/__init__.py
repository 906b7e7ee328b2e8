"""SQLAlchemy models; importing this package registers every table on Base.metadata."""

from app.models.base import Base, utcnow
from app.models.bounce import BounceEvent, BounceKind, RateLimitHit
from app.models.delivery import (
    OPEN_STATUSES,
    Delivery,
    DeliveryStatus,
    OutboxKind,
    OutboxMessage,
)
from app.models.editor import EditorToken
from app.models.editor_account import EditorAccount, EditorSession
from app.models.insight import Click, Heartbeat, Webhook, WebhookDelivery, WebhookDeliveryStatus
from app.models.issue import Issue, IssueStatus
from app.models.revision import IssueRevision
from app.models.subscriber import Subscriber, SubscriberStatus, Suppression

__all__ = [
    "OPEN_STATUSES",
    "Base",
    "BounceEvent",
    "BounceKind",
    "Click",
    "Delivery",
    "DeliveryStatus",
    "EditorAccount",
    "EditorSession",
    "EditorToken",
    "Heartbeat",
    "Issue",
    "IssueRevision",
    "IssueStatus",
    "OutboxKind",
    "OutboxMessage",
    "RateLimitHit",
    "Subscriber",
    "SubscriberStatus",
    "Suppression",
    "Webhook",
    "WebhookDelivery",
    "WebhookDeliveryStatus",
    "utcnow",
]
