"""SNS signing certificates: an unauthenticated stream of distinct certificate URLs (all on
allowed SNS hosts) must not make us fetch without bound, while SNS's own certificates (which
are kept once fetched) always get through. No request here leaves the process: the fetch
itself is replaced by a counter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import Settings
from app.context import build_context
from app.main import create_app
from app.providers import sns_certs
from app.webhooks.fetch import Fetched

TOPIC = "arn:aws:sns:us-east-1:123456789012:morningpost-bounces"
GOOD = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-good.pem"
PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


class FakeFetch:
    """Stands in for app.webhooks.fetch.fetch: counts calls; GOOD has a certificate, the
    rest are 404; `hold` (when set) keeps every fetch waiting until it is released."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.hold: asyncio.Event | None = None

    async def __call__(self, url: str, **_: object) -> Fetched:
        self.urls.append(url)
        if self.hold is not None:
            await self.hold.wait()
        return Fetched(200, PEM) if url == GOOD else Fetched(404, b"no such key")


def unknown(n: int) -> str:
    return f"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{n:032x}.pem"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeFetch:
    """Replace the fetch, and start from an empty cache and a fresh budget."""
    stand_in = FakeFetch()
    monkeypatch.setattr(sns_certs, "fetch", stand_in)
    monkeypatch.setattr(sns_certs, "_cache", {})
    # raising=False: before the budget existed this set an unused name, and the test failed
    # on what was fetched, not on a missing attribute.
    monkeypatch.setattr(sns_certs, "_budget", _fresh_budget(), raising=False)
    return stand_in


def _fresh_budget(clock: object = None) -> object:
    budget_class = getattr(sns_certs, "FetchBudget", None)
    if budget_class is None:
        return None
    return budget_class() if clock is None else budget_class(clock=clock)


@pytest.fixture
def sclient(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A client on an app that accepts SNS messages for TOPIC (default certificate hosts)."""
    sctx = build_context(settings.model_copy(update={"sns_topics": [TOPIC]}), engine=engine)
    with TestClient(create_app(sctx.settings, context=sctx), base_url="http://testserver") as c:
        yield c


def notification(cert_url: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "m",
            "TopicArn": TOPIC,
            "Message": "{}",
            "Timestamp": "2026-12-01T06:01:13.000Z",
            "SignatureVersion": "1",
            "Signature": "AAAA",
            "SigningCertURL": cert_url,
        }
    )


def test_a_flood_of_unknown_certificate_urls_is_fetched_a_bounded_number_of_times(
    sclient: TestClient, fake: FakeFetch
) -> None:
    answers = [
        sclient.post("/webhooks/ses", content=notification(unknown(n))).status_code
        for n in range(60)
    ]
    assert set(answers) == {503}  # SNS would try again later; nothing was verified
    assert 1 <= len(fake.urls) <= 10


def test_a_kept_certificate_serves_while_unknown_urls_wait_for_the_window(
    settings: Settings, fake: FakeFetch, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(sns_certs, "_budget", _fresh_budget(lambda: now[0]), raising=False)

    async def get(url: str) -> bytes | str:
        try:
            return await sns_certs.certificate(url, settings)
        except sns_certs.CertificateUnavailable as exc:
            return str(exc)

    async def scenario() -> None:
        assert await get(GOOD) == PEM
        for n in range(30):
            await get(unknown(n))
        # GOOD, then the failures the budget allows; a success costs no budget.
        assert len(fake.urls) == 1 + sns_certs.FETCH_FAILURES
        assert await get(GOOD) == PEM  # kept: served without a fetch
        assert "failed in the last" in str(await get(unknown(99)))
        assert len(fake.urls) == 1 + sns_certs.FETCH_FAILURES
        now[0] += sns_certs.FETCH_WINDOW_SECONDS + 1  # the window has passed
        await get(unknown(100))
        assert fake.urls[-1] == unknown(100)

    asyncio.run(scenario())


def test_a_url_asked_for_twice_at_once_is_fetched_once_and_few_fetches_wait_at_once(
    settings: Settings, fake: FakeFetch
) -> None:
    async def scenario() -> None:
        fake.hold = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.call_later(5, fake.hold.set)  # never a hang, whatever happens
        first = asyncio.create_task(sns_certs.certificate(GOOD, settings))
        again = asyncio.create_task(sns_certs.certificate(GOOD, settings))
        others = [
            asyncio.create_task(sns_certs.certificate(unknown(n), settings))
            for n in range(1, sns_certs.FETCHES_AT_ONCE)
        ]
        await asyncio.sleep(0.01)
        assert len(fake.urls) == sns_certs.FETCHES_AT_ONCE  # GOOD once, and the others
        with pytest.raises(sns_certs.CertificateUnavailable):
            # One URL past those under way: refused at once, not after waiting on a fetch.
            await asyncio.wait_for(sns_certs.certificate(unknown(99), settings), 2)
        assert len(fake.urls) == sns_certs.FETCHES_AT_ONCE
        fake.hold.set()
        assert await first == PEM and await again == PEM  # the second joined the first
        for other in others:
            with pytest.raises(sns_certs.CertificateUnavailable):
                await other  # a 404
        assert await sns_certs.certificate(GOOD, settings) == PEM
        assert len(fake.urls) == sns_certs.FETCHES_AT_ONCE

    asyncio.run(scenario())
