"""Benchmark: the per-reader fill of a prepared issue, without and with the reader's name slot.

    python bench/name_fill.py [--messages 20000]

Renders the sample-sized issue once (premailer and all), then fills it for N readers with
fill_wire, as the worker does: once as it is, once with "Dear {{reader}}," added (two name
slots: HTML and text). Prints microseconds per message for both; the name slot should cost
a few microseconds (its QP encoding), not a render.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if not __package__:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Settings
from app.rendering.blocks import parse_blocks
from app.rendering.compile import Renderer
from app.sends.compose import PreparedMessage
from app.tokens import TokenService

BLOCKS = [
    {"type": "masthead"},
    {"type": "lead", "kicker": "Today", "title": "Hello", "body": "First **issue**. " * 40},
    {"type": "markdown", "body": "A paragraph of the morning's news. " * 60},
]


def per_message_us(prepared: PreparedMessage, tokens: TokenService, count: int) -> float:
    """Return the mean microseconds of one fill_wire over `count` readers."""
    unsub, prefs = tokens.unsubscribe_token(1, "abcdefgh"), tokens.preferences_token(1, "abcdefgh")
    started = time.perf_counter()
    for n in range(count):
        prepared.fill_wire(
            to=f"reader{n}@example.org",
            unsubscribe_token=unsub,
            preferences_token=prefs,
            message_id=f"<mp.1.{n}@mp.test>",
            date="Mon, 01 Jan 2024 07:00:00 GMT",
            reader_name=f"Reader Ñumber {n}",
        )
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    """Print the fill cost per message without and with the name slot."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()
    settings = Settings(
        secret_keys=["k"], from_address="Post <news@mp.test>", base_url="https://mp.test"
    )
    renderer, tokens = Renderer(settings), TokenService(["k"], 3600)
    for label, extra in (
        ("plain", []),
        ("named", [{"type": "markdown", "body": "Dear {{reader}},"}]),
    ):
        blocks = parse_blocks([*BLOCKS[:1], *extra, *BLOCKS[1:]])
        compiled = renderer.compile_issue(subject="S", preheader="P", slug="s", blocks=blocks)
        prepared = PreparedMessage.build(compiled, settings)
        size = len(compiled.html) // 1024
        us = per_message_us(prepared, tokens, args.messages)
        print(
            f"{label:6} {size:4d} KB html  fill_wire {us:7.1f} us/message  (named={prepared.named})"
        )


if __name__ == "__main__":
    main()
