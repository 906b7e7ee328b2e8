"""Editors' outbound webhooks: POST/GET /webhooks, DELETE /webhooks/{id}, its delivery log.

(POST /webhooks/bounce, the inbound bounce endpoint, lives in app.bounces.routes.)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from app.deps import ContextDep, SessionDep, require_editor
from app.models import utcnow
from app.webhooks import service
from app.webhooks.schemas import WebhookCreated, WebhookIn

outbound_webhooks_router = APIRouter(
    prefix="/webhooks", tags=["webhooks"], dependencies=[Depends(require_editor)]
)


@outbound_webhooks_router.post("", status_code=201, response_model=WebhookCreated)
def create_webhook(data: WebhookIn, session: SessionDep, ctx: ContextDep) -> Any:
    """Register an endpoint; the answer carries its signing secret, shown only now."""
    row, secret = service.create_webhook(session, ctx.settings, data.url, data.events, utcnow())
    return {"id": row.id, "secret": secret, "url": row.url, "events": row.events}


@outbound_webhooks_router.get("")
def list_webhooks(session: SessionDep) -> list[dict[str, Any]]:
    """List webhooks with their state, delivery counts and latest deliveries."""
    return service.list_webhooks(session)


@outbound_webhooks_router.get("/{webhook_id}/deliveries")
def deliveries(webhook_id: int, session: SessionDep, limit: int = 50) -> list[dict[str, Any]]:
    """Return one webhook's delivery log, newest first."""
    return service.delivery_log(session, webhook_id, limit)


@outbound_webhooks_router.post("/{webhook_id}/enable")
def enable(webhook_id: int, session: SessionDep) -> dict[str, Any]:
    """Re-enable a webhook that was disabled after repeated failures."""
    row = service.enable_webhook(session, webhook_id)
    return {"id": row.id, "enabled": True}


@outbound_webhooks_router.delete("/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: int, session: SessionDep) -> Response:
    """Remove a webhook and its undelivered events."""
    service.delete_webhook(session, webhook_id)
    return Response(status_code=204)
