"""POST /webhooks/bounce: a relay or an inbound-mail service hands us a raw DSN or ARF report.

Authentication: `X-MorningPost-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw request
body keyed with the webhook secret. The secret is HMAC-SHA256(newest signing key,
"morningpost.bounce-webhook") in hex (see app.sends.verp.webhook_secret); older keys still
verify, so rotating MORNINGPOST_SECRET_KEYS does not break a configured relay at once.

Body: the message itself (`message/rfc822`, or any non-JSON type), or JSON
`{"message": "<raw message>", "recipient": "bounces+…@…"?}` where `recipient` is the envelope
recipient when the relay knows it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.bounces.service import record_inbound
from app.deps import ContextDep, SessionDep
from app.errors import InvalidInput, Unauthorized
from app.models import utcnow
from app.sends.verp import webhook_signature_ok

SIGNATURE_HEADER = "X-MorningPost-Signature"
MAX_BODY = 10 * 1024 * 1024

webhooks_router = APIRouter(prefix="/webhooks", tags=["webhooks"])


async def raw_body(request: Request) -> bytes:
    """Return the request body as bytes (signatures are over the exact bytes)."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InvalidInput("The report is larger than 10 MB.")
    return body


def _unpack(body: bytes, content_type: str) -> tuple[bytes, list[str]]:
    """Return (raw message, envelope recipients) from either accepted body shape."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        return body, []
    try:
        data: Any = json.loads(body)
    except ValueError:
        raise InvalidInput("The body is not valid JSON.") from None
    if not isinstance(data, dict) or not isinstance(data.get("message"), str):
        raise InvalidInput('Send {"message": "<the raw message>"}.')
    recipient = data.get("recipient")
    rcpts = [recipient] if isinstance(recipient, str) and recipient else []
    return data["message"].encode("utf-8", "surrogateescape"), rcpts


@webhooks_router.post("/bounce", status_code=202)
def bounce_webhook(
    request: Request,
    body: Annotated[bytes, Depends(raw_body)],
    session: SessionDep,
    ctx: ContextDep,
) -> dict[str, Any]:
    """Record one DSN or feedback report; 401 when the signature does not verify."""
    if not webhook_signature_ok(body, request.headers.get(SIGNATURE_HEADER), ctx.settings):
        raise Unauthorized(f"Missing or wrong {SIGNATURE_HEADER} header.")
    raw, rcpts = _unpack(body, request.headers.get("content-type", ""))
    events = record_inbound(session, raw, "webhook", ctx.settings, utcnow(), rcpts)
    return {"events": [{"kind": e.kind, "status": e.status_code} for e in events]}
