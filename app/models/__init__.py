"""SQLAlchemy models; importing this package registers every table on Base.metadata."""

from app.models.abtest import AbTest
from app.models.audience import Segment, SubscriberTag
from app.models.base import Base, utcnow
from app.models.bounce import BounceEvent, BounceKind, ProviderEvent, RateLimitHit
from app.models.delivery import (
    OPEN_STATUSES,
    Delivery,
    DeliveryStatus,
    OutboxKind,
    OutboxMessage,
)
from app.models.editor import EditorToken
from app.models.editor_account import EditorAccount, EditorSession
from app.models.feed import Feed, FeedItem
from app.models.insight import Click, Heartbeat, Webhook, WebhookDelivery, WebhookDeliveryStatus
from app.models.issue import FrozenIssue, Issue, IssueStatus
from app.models.newsletter import (
    DEFAULT_NEWSLETTER_ID,
    Newsletter,
    Subscription,
    SubscriptionStatus,
)
from app.models.page_stamp import PageStamp
from app.models.relay import RelayState, RelayUsage
from app.models.revision import IssueRevision
from app.models.sequence import Sequence, SequenceReader, SequenceStep
from app.models.subscriber import Subscriber, SubscriberStatus, Suppression

__all__ = [
    "DEFAULT_NEWSLETTER_ID",
    "OPEN_STATUSES",
    "AbTest",
    "Base",
    "BounceEvent",
    "BounceKind",
    "Click",
    "Delivery",
    "DeliveryStatus",
    "EditorAccount",
    "EditorSession",
    "EditorToken",
    "Feed",
    "FeedItem",
    "FrozenIssue",
    "Heartbeat",
    "Issue",
    "IssueRevision",
    "IssueStatus",
    "Newsletter",
    "OutboxKind",
    "OutboxMessage",
    "PageStamp",
    "ProviderEvent",
    "RateLimitHit",
    "RelayState",
    "RelayUsage",
    "Segment",
    "Sequence",
    "SequenceReader",
    "SequenceStep",
    "Subscriber",
    "SubscriberStatus",
    "SubscriberTag",
    "Subscription",
    "SubscriptionStatus",
    "Suppression",
    "Webhook",
    "WebhookDelivery",
    "WebhookDeliveryStatus",
    "utcnow",
]
