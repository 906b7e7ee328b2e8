"""POST /webhooks/{ses,postmark,sendgrid,mailgun}: email providers' bounce and complaint events.

Each request is verified in its provider's own way first (401 when it does not verify). A
verified event about no delivery of ours is answered 200 and ignored, since providers retry
anything else; the same event delivered twice counts once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

from anyio import from_thread
from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy.orm import Session

from app.context import Context
from app.db import session_scope
from app.deps import ContextDep
from app.errors import InvalidInput, Unauthorized
from app.models import utcnow
from app.providers import mailgun, postmark, sendgrid, ses, sns_certs
from app.providers.reports import BadPayload, BadSignature, ProviderReport
from app.providers.service import Recorded, first_time, record_reports

providers_router = APIRouter(prefix="/webhooks", tags=["provider webhooks"])


async def raw_body(request: Request) -> bytes:
    """Return the request body as bytes (signatures are over the exact bytes)."""
    return await request.body()


Body = Annotated[bytes, Depends(raw_body)]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise BadPayload("the body is not JSON") from None


def _answer(recorded: Recorded) -> dict[str, Any]:
    return {
        "status": "ok",
        "counted": recorded.counted,
        "duplicates": recorded.duplicates,
        "unmatched": recorded.unmatched,
    }


def _recorded(ctx: Context, work: Callable[[Session], Recorded]) -> dict[str, Any]:
    """Verify, parse and record in one transaction; map errors to answers.

    The handlers are plain `def`s: they run on a worker thread inside the admission gate, so a
    burst of provider events waits its turn (or gets 503 and Retry-After, which every
    provider retries) instead of taking threads the admitted requests need.
    """
    try:
        with session_scope(ctx.sessions) as session:
            return _answer(work(session))
    except BadSignature as exc:
        raise Unauthorized(f"The request is not verified: {exc}.") from None
    except BadPayload as exc:
        raise InvalidInput(f"The request is not in the provider's format: {exc}.") from None


def _record(ctx: Context, reports: list[ProviderReport]) -> Callable[[Session], Recorded]:
    return lambda session: record_reports(session, reports, ctx.settings, utcnow())


@providers_router.post("/postmark")
def postmark_webhook(request: Request, body: Body, ctx: ContextDep) -> dict[str, Any]:
    """Record a Postmark bounce or spam complaint (HTTP Basic credentials required)."""

    def work(session: Session) -> Recorded:
        auth = request.headers.get("authorization")
        postmark.check_auth(auth, ctx.settings.postmark_webhook_auth)
        return _record(ctx, postmark.parse(_json(body)))(session)

    return _recorded(ctx, work)


@providers_router.post("/sendgrid")
def sendgrid_webhook(request: Request, body: Body, ctx: ContextDep) -> dict[str, Any]:
    """Record a batch of SendGrid events (signed Event Webhook)."""
    signature = request.headers.get(sendgrid.SIGNATURE_HEADER)
    timestamp = request.headers.get(sendgrid.TIMESTAMP_HEADER)

    def work(session: Session) -> Recorded:
        sendgrid.check_signature(body, signature, timestamp, ctx.settings.sendgrid_public_key)
        return _record(ctx, sendgrid.parse(_json(body)))(session)

    return _recorded(ctx, work)


@providers_router.post("/mailgun")
def mailgun_webhook(body: Body, ctx: ContextDep) -> dict[str, Any]:
    """Record a Mailgun event (HMAC-signed, one-time token, at most five minutes old)."""

    def work(session: Session) -> Recorded:
        data = _json(body)
        token = mailgun.check_signature(data, ctx.settings.mailgun_signing_key, time.time())
        if not first_time(session, "mailgun-token", token, utcnow()):
            raise BadSignature("this request's token was used before")
        return _record(ctx, mailgun.parse(data))(session)

    return _recorded(ctx, work)


@providers_router.post("/ses")
def ses_webhook(body: Body, ctx: ContextDep) -> dict[str, Any]:
    """Record an SES bounce or complaint delivered by SNS; confirm the topic's subscription."""
    settings = ctx.settings
    try:
        message = ses.envelope(body)
        if message.get("TopicArn") not in settings.sns_topics:
            raise BadSignature("the TopicArn is not one of MORNINGPOST_SNS_TOPICS")
        # The fetch is async (app.webhooks.fetch): run on the loop, this thread waits for it.
        url = message.get("SigningCertURL", "")
        pem = from_thread.run(sns_certs.certificate, url, settings)
        ses.verify(message, pem, utcnow())
        if message["Type"] == "SubscriptionConfirmation":
            confirm = message.get("SubscribeURL", "")
            from_thread.run(sns_certs.confirm_subscription, confirm, settings)
            return {"status": "confirmed"}
        if message["Type"] == "UnsubscribeConfirmation":
            return {"status": "ok"}  # nothing to do: an operator removed the subscription
    except BadSignature as exc:
        raise Unauthorized(f"The request is not verified: {exc}.") from None
    except BadPayload as exc:
        raise InvalidInput(f"The request is not an SNS message: {exc}.") from None
    except sns_certs.CertificateUnavailable as exc:
        # SNS retries a 5xx later, when the certificate or the confirmation may work.
        raise HTTPException(
            503, f"SNS could not be reached: {exc}", headers={"Retry-After": "60"}
        ) from None
    return _recorded(ctx, _record(ctx, ses.parse_notification(message)))
