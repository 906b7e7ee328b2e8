"""A separate process that asks /healthz again and again while a test loads the server.

A process, not a thread: the live server runs in the test's own process, so a thread would
share its GIL and could not even start a request while the server hogs it (and so would
never see the stall it is there to measure).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import httpx2


class HealthProbe:
    """Poll `/healthz` from a child process until stopped; `worst` is the slowest answer (s)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.worst = 0.0
        self.answers: list[int] = []
        self._child: subprocess.Popen[str] | None = None

    def __enter__(self) -> HealthProbe:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "tests.health_probe", self.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._child.stdout is not None
        ready = self._child.stdout.readline()  # the first answer: the probe is running
        assert ready.strip() == "ready", ready
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._child is not None
        out, _ = self._child.communicate("stop\n", timeout=300)
        report = json.loads(out.strip().splitlines()[-1])
        self.worst, self.answers = report["worst"], report["answers"]
        assert self.answers, "/healthz was never answered"


def _probe(url: str) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    worst, answers = 0.0, []
    with httpx2.Client(base_url=url, timeout=300) as client:
        client.get("/healthz")
        print("ready", flush=True)
        while not stop.is_set():
            started = time.monotonic()
            answers.append(client.get("/healthz").status_code)
            worst = max(worst, time.monotonic() - started)
            stop.wait(0.02)
    print(json.dumps({"worst": worst, "answers": answers}), flush=True)


if __name__ == "__main__":
    _probe(sys.argv[1])
