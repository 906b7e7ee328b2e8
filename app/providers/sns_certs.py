"""SNS signing certificates, fetched over HTTPS from an allowed host once and kept."""

from __future__ import annotations

from app.config import Settings
from app.providers.reports import BadSignature
from app.providers.ses import host_allowed
from app.webhooks.fetch import Fetched, FetchError, fetch

MAX_CERTIFICATE_BYTES = 64 * 1024
TIMEOUT_SECONDS = 10.0
_KEEP = 32  # SNS rotates its certificate rarely; a handful of URLs is all a process sees

_cache: dict[str, bytes] = {}


class CertificateUnavailable(Exception):
    """The certificate could not be fetched now; SNS should try again later (503)."""


async def certificate(url: str, settings: Settings) -> bytes:
    """Return the PEM at `url`; BadSignature for a URL we never fetch from."""
    if not host_allowed(url, settings.sns_cert_hosts):
        raise BadSignature("SigningCertURL is not an https URL on an allowed SNS host")
    cached = _cache.get(url)
    if cached is not None:
        return cached
    # No lock: two first requests at once both fetch it, which is harmless (and rare).
    got = await _get(url, settings)
    if got.status != 200 or b"-----BEGIN CERTIFICATE-----" not in got.body:
        raise CertificateUnavailable(f"the certificate URL answered {got.status}")
    if len(_cache) >= _KEEP:
        _cache.pop(next(iter(_cache)))
    _cache[url] = got.body
    return got.body


async def confirm_subscription(url: str, settings: Settings) -> None:
    """Visit a SubscribeURL (only on an allowed SNS host); CertificateUnavailable if it fails."""
    if not host_allowed(url, settings.sns_cert_hosts):
        raise BadSignature("SubscribeURL is not an https URL on an allowed SNS host")
    got = await _get(url, settings)
    if got.status != 200:
        raise CertificateUnavailable(f"the SubscribeURL answered {got.status}")


async def _get(url: str, settings: Settings) -> Fetched:
    """GET an SNS URL over HTTPS (the address rules of webhooks); CertificateUnavailable if not."""
    try:
        return await fetch(
            url,
            timeout=TIMEOUT_SECONDS,
            allow_private=settings.webhook_allow_private,
            max_bytes=MAX_CERTIFICATE_BYTES,
            https_only=True,
        )
    except FetchError as exc:
        raise CertificateUnavailable(str(exc)) from None
