"""A feed served on loopback (RSS 2.0 with an ETag), and entries for it: the feed tests' server."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def rss(entries: list[dict[str, str]]) -> bytes:
    """Return an RSS 2.0 document with these entries (newest first)."""
    items = "".join(
        "<item>"
        + (f"<guid>{e['guid']}</guid>" if "guid" in e else "")
        + f"<title>{e['title']}</title>"
        + (f"<link>{e['link']}</link>" if "link" in e else "")
        + f"<description>{e.get('summary', '')}</description></item>"
        for e in entries
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>AI Wire</title>'
        f"<link>https://wire.example/</link><description>d</description>{items}</channel></rss>"
    ).encode()


class FeedServer:
    """Serves one feed with an ETag; answers 304 to a matching If-None-Match."""

    def __init__(self) -> None:
        self.entries: list[dict[str, str]] = []
        self.version = 0
        self.requests: list[dict[str, str]] = []
        self.override: tuple[int, dict[str, str], bytes] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append({k.lower(): v for k, v in self.headers.items()})
                if server.override is not None:
                    status, headers, payload = server.override
                else:
                    etag = f'"v{server.version}"'
                    if self.headers.get("If-None-Match") == etag:
                        status, headers, payload = 304, {"ETag": etag}, b""
                    else:
                        status, headers = 200, {"ETag": etag, "Content-Type": "application/rss+xml"}
                        payload = rss(server.entries)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        """Return the feed's URL."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/feed.xml"

    def publish(self, *entries: dict[str, str]) -> None:
        """Put new entries at the top of the feed (a new version, a new ETag)."""
        self.entries = [*entries, *self.entries]
        self.version += 1

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


def entry(n: int, **extra: str) -> dict[str, str]:
    """Return entry number n."""
    return {
        "guid": f"urn:wire:{n}",
        "title": f"Story {n}",
        "link": f"https://wire.example/{n}",
        "summary": f"&lt;p&gt;Summary of &lt;b&gt;story {n}&lt;/b&gt;&lt;/p&gt;",
        **extra,
    }


def story(guid: str) -> dict[str, str]:
    """Return a plain entry: a guid, a title and a link."""
    return {"guid": guid, "title": f"Story {guid}", "link": f"https://wire.example/{guid}"}
