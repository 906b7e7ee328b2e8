"""Insight and integrations: /metrics, webhooks, clicks, logs, the bounce mailbox, providers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from app.config import parsing


class InsightSettings(BaseModel):
    """Metrics, outbound webhooks, click counts, JSON logs and the bounce mailbox."""

    metrics_token: str = ""  # a bearer token for Prometheus besides editor tokens
    webhook_backoff_seconds: float = Field(default=10.0, ge=0)  # doubles per attempt, max 1 h
    webhook_give_up_seconds: int = Field(default=24 * 3600, ge=0)
    webhook_disable_after: int = Field(default=50, ge=1)  # consecutive failed attempts
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_allow_private: bool = False  # let webhooks reach private/loopback addresses
    feeds_allow_private: bool = False  # let RSS/Atom feeds be fetched from private addresses
    click_counts: bool = True  # rewrite the HTML part's links to signed /l/<token> redirects
    track_readers: bool = False  # record who clicked (links carry the reader; README, privacy)
    log_format: Literal["text", "json"] = "text"
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)  # `worker` serves /metrics; 0 = off
    worker_metrics_host: str = "127.0.0.1"
    # A mailbox that receives bounces, for those who cannot point an MX at `morningpost bounces`:
    # imaps://user:pass@host:993/INBOX, imap://… (STARTTLS required) or pop3s://user:pass@host:995.
    bounce_mailbox: str = ""
    bounce_mailbox_folder: str = "Processed"  # IMAP: where handled reports go (POP3 deletes)
    bounce_mailbox_interval_seconds: float = Field(default=60.0, gt=0)

    _check_mailbox = field_validator("bounce_mailbox")(parsing.check_mailbox_url)


class ProviderSettings(BaseModel):
    """Email providers' event webhooks (bounces and complaints in each provider's own format)."""

    # SES via SNS: the topics we accept, and the hosts a signing certificate may come from.
    sns_topics: Annotated[list[str], NoDecode] = Field(default_factory=list)
    sns_cert_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["sns.*.amazonaws.com"]
    )
    postmark_webhook_auth: str = ""  # "user:password" for HTTP Basic on /webhooks/postmark
    sendgrid_public_key: str = ""  # base64 DER (SubjectPublicKeyInfo) of the ECDSA P-256 key
    mailgun_signing_key: str = ""  # the HTTP webhook signing key

    _split_list = field_validator("sns_topics", "sns_cert_hosts", mode="before")(parsing.split_list)
    _check_postmark = field_validator("postmark_webhook_auth")(parsing.check_basic_auth)
    _check_sendgrid = field_validator("sendgrid_public_key")(parsing.check_ecdsa_public_key)
