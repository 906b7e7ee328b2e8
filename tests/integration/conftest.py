"""Fixtures of the integration tests that several files share (the rest: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from app.config import Settings
from app.context import Context, build_context
from app.main import create_app
from tests.feed_support import FeedServer


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """Serve a feed on loopback."""
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture
def fctx(settings: Settings, engine: Engine) -> Context:
    """Return a context that may fetch feeds from loopback (FEEDS_ALLOW_PRIVATE)."""
    return build_context(settings.model_copy(update={"feeds_allow_private": True}), engine=engine)


@pytest.fixture
def fclient(fctx: Context) -> Iterator[TestClient]:
    """Return a client on an app with that context."""
    with TestClient(create_app(fctx.settings, context=fctx), base_url="http://testserver") as c:
        yield c
