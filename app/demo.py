"""`morningpost demo`: the sample issue and a few readers, sent into the outbox."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.issues.schemas import IssueIn
from app.issues.service import create_issue, send_issue
from app.models import Subscriber, SubscriberStatus
from app.paths import examples_dir
from app.rendering.compile import Renderer
from app.tokens import hash_secret

DEMO_READERS = (
    ("ada@reader.example", "Ada"),
    ("grace@reader.example", "Grace"),
    ("alan@reader.example", "Alan"),
)


def sample_issue_payload() -> dict[str, Any]:
    """Return the shipped example issue (the blocks an editor would POST)."""
    data: dict[str, Any] = json.loads((examples_dir() / "ai-morning-post.json").read_text("utf-8"))
    return data


def load_demo(session: Session, renderer: Renderer, now: datetime) -> tuple[int, int]:
    """Add demo readers and send the sample issue to them; return (issue id, recipients)."""
    for email, name in DEMO_READERS:
        if session.scalar(select(Subscriber.id).where(Subscriber.email == email)) is None:
            session.add(
                Subscriber(
                    email=email,
                    email_hash=hash_secret(email),
                    name=name,
                    status=SubscriberStatus.active,
                    consent_source="demo",
                    confirmed_at=now,
                )
            )
    session.flush()
    payload = sample_issue_payload()
    # Each run sends a fresh copy; without the fixed slug the next free one is generated.
    payload.pop("slug", None)
    issue = create_issue(session, IssueIn.model_validate(payload), renderer)
    result = send_issue(session, issue.id, None, now, renderer)
    return issue.id, int(result["recipients"])
