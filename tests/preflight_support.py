"""Preflight test support: a small site on loopback whose links and images answer as scripted."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.webhooks.safety import Target, resolve


class Site:
    """A small web site on loopback: the answers the link check must tell apart."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, str]] = []
        self.slow_arrived = threading.Event()
        self.release = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, method: str) -> None:
                site.hits.append((method, self.path))
                if self.path.startswith("/slow"):
                    site.slow_arrived.set()
                    site.release.wait(10)
                    self.send_response(200)
                elif self.path == "/missing":
                    self.send_response(404)
                elif self.path == "/broken":
                    self.send_response(500)
                elif self.path == "/nohead" and method == "HEAD":
                    self.send_response(405)
                elif self.path == "/moved":
                    self.send_response(301)
                    self.send_header("Location", "/missing")
                elif self.path == "/big.jpg":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(3 * 1024 * 1024))
                    self.end_headers()
                    return
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:
                self._answer("HEAD")

            def do_GET(self) -> None:
                self._answer("GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://site.test:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def resolver(target: Target) -> list[str]:
    """Resolve the test site's name to loopback (the pre-send check refuses IP-literal links)."""
    return ["127.0.0.1"] if target.host == "site.test" else resolve(target)
