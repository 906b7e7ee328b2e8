"""Benchmark: per-recipient message building with and without DKIM signing.

Run from the repository root: python -m bench.dkim [N]. Builds a ~60 KB multipart message
once (like the engine's once-per-issue compile), then fills To, Message-ID and the unsubscribe
token N times, with and without signing, and prints both rates and their ratio; dkimpy's own
signer is timed for scale.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

if not __package__:
    # Run as a script, this file's folder comes first on sys.path and would shadow dkimpy.
    sys.path[:] = [p for p in sys.path if Path(p).resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# By name, after the path fix: this file is called dkim too.
dkimpy: Any = importlib.import_module("dkim")

from app.sends.dkim import DkimSigner, generate_key  # noqa: E402

TOKEN = b"MPXUNSUBSCRIBETOKENXQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"
PARAGRAPH = (
    '<p style="font-family:Georgia,serif;font-size:16px;line-height:1.5;color:#222">'
    "Large language models keep getting cheaper to run; this week three labs published "
    'distillation results that fit on a laptop. <a href="https://example.org/story">Read</a>'
    "</p>\n"
)


def template() -> bytes:
    """Return a ~60 KB issue with placeholders for the per-recipient parts."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "The AI Morning Post <news@morningpost.test>"
    msg["To"] = "XTOX"
    msg["Subject"] = "The AI Morning Post — Monday"
    msg["Date"] = "Mon, 07 Dec 2026 06:00:00 +0000"
    msg["Message-ID"] = "XMSGIDX"
    msg["List-Id"] = "The AI Morning Post <newsletter.morningpost.test>"
    msg["List-Unsubscribe"] = f"<https://morningpost.test/unsubscribe/{TOKEN.decode()}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    html = PARAGRAPH * 200 + f'<a href="https://morningpost.test/unsubscribe/{TOKEN.decode()}">x'
    msg.set_content("Plain text version.\n" * 400)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def fill(tpl: bytes, i: int) -> bytes:
    """Drop one recipient's address, Message-ID and token into the prepared bytes."""
    token = f"{i:012d}".encode() + TOKEN[12:]
    return (
        tpl.replace(b"XTOX", f"reader{i}@example.org".encode())
        .replace(b"XMSGIDX", f"<mp.1.{i}@morningpost.test>".encode())
        .replace(TOKEN, token)
    )


def rate(n: int, build: Callable[[int], bytes]) -> float:
    """Return messages per second for n calls of build(i)."""
    start = time.perf_counter()
    for i in range(n):
        build(i)
    return n / (time.perf_counter() - start)


def main() -> None:
    """Print unsigned vs signed throughput and the ratio."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    tpl = template()
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "dkim.pem"
        generate_key(key, "mp", "morningpost.test")
        pem = key.read_bytes()
    signer = DkimSigner("mp", "morningpost.test", pem)
    unsigned = rate(n, lambda i: fill(tpl, i))
    signed = rate(n, lambda i: signer.sign(fill(tpl, i)))
    m = max(20, n // 50)
    reference = rate(m, lambda i: dkimpy.sign(fill(tpl, i), b"mp", b"morningpost.test", pem))
    print(f"message size           {len(tpl) / 1024:.1f} KB, N={n}")
    print(f"unsigned fill          {unsigned:10.0f} msg/s  ({1000 / unsigned:.3f} ms each)")
    print(f"signed (OpenSSL RSA)   {signed:10.0f} msg/s  ({1000 / signed:.3f} ms each)")
    print(f"signed (dkimpy, N={m}) {reference:10.0f} msg/s  ({1000 / reference:.3f} ms each)")
    print(f"ratio unsigned/signed  {unsigned / signed:.1f}x  (dkimpy: {unsigned / reference:.1f}x)")


if __name__ == "__main__":
    main()
