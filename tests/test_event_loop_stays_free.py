"""No request body can hold the event loop: /healthz answers in under a second meanwhile.

Issue 17, items 1 and 2: the JSON depth check was quadratic on escaped quotes and ran on the
event loop before routing; Markdown and YAML front matter were parsed before authentication.
"""

from __future__ import annotations

import httpx2

from app.context import Context
from tests.health_probe import HealthProbe

# The bound: /healthz answers in under a second whatever the load.
HEALTH_BOUND = 1.0
TIMEOUT = 120.0


def test_escaped_quotes_in_a_public_json_body_do_not_stall_the_server(
    live: tuple[str, Context],
) -> None:
    url, _ = live
    body = b'"' + b'\\"' * 16384  # 32 KB: one unterminated string of escaped quotes
    with HealthProbe(url) as probe, httpx2.Client(base_url=url, timeout=TIMEOUT) as client:
        response = client.post(
            "/subscribe", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code in (400, 422), response.text
    assert probe.worst < HEALTH_BOUND, f"/healthz waited {probe.worst:.2f} s"
