"""An app that nobody holds any more is freed, with all it holds.

FastAPI keeps every endpoint it has classified in a module-level cache (4096 entries), so an
endpoint that closes over its app keeps that app alive. The tests build an app per test: with
fastapi-offline's /docs closures, a run kept every one (7 million objects at the end of the
integration tests), and one full garbage collection of that heap held the live server's event
loop for 3 s, failing the /healthz timing tests.
"""

from __future__ import annotations

import gc
import weakref

from fastapi.testclient import TestClient

from app.context import Context
from app.main import create_app


def test_an_app_that_served_its_docs_is_freed_once_dropped(ctx: Context) -> None:
    app = create_app(ctx.settings, context=ctx)
    with TestClient(app) as client:
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect", "/docs-assets/swagger-ui.css"):
            assert client.get(path).status_code == 200, path
    gone = weakref.ref(app)
    del app, client
    gc.collect()
    assert gone() is None, "something still holds the app: " + ", ".join(
        sorted({type(r).__name__ for r in gc.get_referrers(gone())})
    )
