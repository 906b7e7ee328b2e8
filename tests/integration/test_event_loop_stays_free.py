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


def _front_matter_flood(keys: int) -> bytes:
    """A Markdown issue whose front matter has `keys` made-up keys (about 13 bytes each)."""
    lines = ["---", "subject: Flood"] + [f"k{i}: v" for i in range(keys)] + ["---"]
    return ("\n".join(lines) + "\n## Hello {lead}\nText.\n").encode()


def test_markdown_without_a_token_is_refused_before_it_is_read(
    live: tuple[str, Context],
) -> None:
    url, _ = live
    body = _front_matter_flood(100_000)  # about 1.2 MB of YAML
    with HealthProbe(url) as probe, httpx2.Client(base_url=url, timeout=TIMEOUT) as client:
        response = client.post("/issues", content=body, headers={"content-type": "text/markdown"})
    assert response.status_code == 401, response.text
    assert probe.worst < HEALTH_BOUND, f"/healthz waited {probe.worst:.2f} s"


def test_front_matter_is_bounded_before_yaml_reads_it(
    live: tuple[str, Context], editor: dict[str, str]
) -> None:
    url, _ = live
    body = _front_matter_flood(100_000)
    headers = {"content-type": "text/markdown", **editor}
    with HealthProbe(url) as probe, httpx2.Client(base_url=url, timeout=TIMEOUT) as client:
        response = client.post("/issues", content=body, headers=headers)
        many_keys = client.post("/issues", content=_front_matter_flood(40), headers=headers)
    assert response.status_code == 422, response.text
    assert "front matter" in response.json()["detail"]
    assert many_keys.status_code == 422, many_keys.text
    assert "front matter" in many_keys.json()["detail"]
    assert probe.worst < HEALTH_BOUND, f"/healthz waited {probe.worst:.2f} s"
