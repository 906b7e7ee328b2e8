"""Hostile request bodies of a given size, built where they are sent (tests.load's child)."""

from __future__ import annotations

BOUNDARY = "hostile-boundary"

# kind → the Content-Type it is sent with.
CONTENT_TYPES = {
    "deep-json": "application/json",
    "escaped-json": "application/json",
    "many-values-json": "application/json",
    "form-fields": "application/x-www-form-urlencoded",
    "front-matter": "text/markdown",
    "markdown": "text/markdown",
    "csv": f"multipart/form-data; boundary={BOUNDARY}",
}


def hostile_body(kind: str, size: int) -> bytes:
    """Return a body of about `size` bytes of the given kind."""
    if kind == "deep-json":
        return b"[" * size
    if kind == "escaped-json":
        # One string that never ends, all escaped quotes: the old depth check was quadratic.
        return b'{"subject": "' + b'\\"' * ((size - 14) // 2)
    if kind == "many-values-json":
        return b'{"subject": "x", "blocks": [' + b"{}," * ((size - 40) // 3) + b"{}]}"
    if kind == "form-fields":
        return (b"f=1&" * (size // 4))[:size]
    if kind == "front-matter":
        keys = (size - 40) // 13
        lines = ["---", "subject: Flood"] + [f"k{i:07d}: v" for i in range(keys)] + ["---"]
        return "\n".join(lines).encode()[:size]
    if kind == "markdown":
        head = b"---\nsubject: Hostile\n---\n## Everything {markdown}\n"
        item = b"- **a *b [c](http://x.org/ ![d](e) `f` <g> &amp; _h_\n"
        return head + item * ((size - len(head)) // len(item))
    if kind == "csv":
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
            "Content-Type: text/csv\r\n\r\nemail,name\r\n"
        ).encode()
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        # A quoted field that never closes: the CSV reader must not hold all of it as one row.
        return head + b'"' + b"x" * (size - len(head) - len(tail) - 1) + tail
    raise ValueError(kind)
