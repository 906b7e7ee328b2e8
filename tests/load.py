"""Many requests at once from a separate process (a load of the test's own threads would share
the live server's GIL and slow it down for reasons no real client causes)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx2

from tests.hostile import CONTENT_TYPES, hostile_body


@dataclass(frozen=True)
class Answer:
    """What one request got back."""

    status: int
    retry_after: str | None
    location: str | None
    seconds: float


def fire_at_once(
    url: str,
    requests: list[dict[str, Any]],
    parallel: int | None = None,
    timeout: float = 120.0,
) -> list[Answer]:
    """Send `requests` ({method, path, headers?, cookies?, body?}) from a child process,
    `parallel` at a time (all at once by default); return their answers in order."""
    spec = {"url": url, "requests": requests, "parallel": parallel or len(requests)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.load"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=timeout * 4,
        check=True,
    )
    return [Answer(**a) for a in json.loads(done.stdout)]


def _send(url: str, req: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    answer = _exchange(url, req)
    return {**answer, "seconds": time.monotonic() - started}


def _exchange(url: str, req: dict[str, Any]) -> dict[str, Any]:
    with httpx2.Client(base_url=url, timeout=120, cookies=req.get("cookies")) as client:
        try:
            body = req.get("body")  # {"kind", "size"}: built here (tests.hostile)
            headers = dict(req.get("headers") or {})
            content = None
            if body is not None:
                content = hostile_body(body["kind"], body["size"])
                headers["content-type"] = CONTENT_TYPES[body["kind"]]
            response = client.request(req["method"], req["path"], headers=headers, content=content)
        except httpx2.TransportError:
            # The server answered before reading the whole body and closed the connection.
            return {"status": 0, "retry_after": None, "location": None}
    return {
        "status": response.status_code,
        "retry_after": response.headers.get("retry-after"),
        "location": response.headers.get("location"),
    }


if __name__ == "__main__":
    spec = json.load(sys.stdin)
    with ThreadPoolExecutor(spec["parallel"]) as pool:
        answers = list(pool.map(lambda r: _send(spec["url"], r), spec["requests"]))
    print(json.dumps(answers))
