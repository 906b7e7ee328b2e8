"""Benchmark: preparing an uploaded photo (check, orient, resize to 1200 px, strip, encode).

    python bench/images.py [--runs 5]

A 12-megapixel JPEG (4000 x 3000, a gradient with noise, as a phone photo) and a 4000 x 3000
PNG screenshot-like image go through app.media.images.prepare, the work POST /media runs in a
worker thread. Prints milliseconds per image (median of the runs) and the sizes in and out.
The upload answer waits for this; it never runs on the event loop.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

if not __package__:  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from app.media.images import prepare

CEILING_MS = 1500  # a 12 MP photo should be ready within this on one core


def photo(fmt: str) -> bytes:
    """Return a 4000 x 3000 test image in `fmt`."""
    base = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    noise = Image.frombytes("L", (4000, 3000), os.urandom(4000 * 3000)).convert("RGB")
    image = Image.blend(base, noise, 0.15) if fmt == "JPEG" else base
    out = io.BytesIO()
    image.save(out, format=fmt, quality=92) if fmt == "JPEG" else image.save(out, format=fmt)
    return out.getvalue()


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for fmt in ("JPEG", "PNG"):
        data = photo(fmt)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            result = prepare(data)
            times.append((time.perf_counter() - start) * 1000)
        ms = statistics.median(times)
        print(
            f"{fmt:4} 4000x3000 {len(data) / 1e6:5.1f} MB -> {result.width}x{result.height} "
            f"{len(result.data) / 1e6:5.2f} MB: {ms:6.0f} ms per image "
            f"(ceiling {CEILING_MS} ms) {'ok' if ms <= CEILING_MS else 'OVER'}"
        )


if __name__ == "__main__":
    main()
