"""The preflight's JSON shape (GET /issues/{id}/check), shared by the API and the console."""

from __future__ import annotations

from typing import Any

from app.issues.check import CLIP_BYTES, WARN_BYTES, Finding
from app.issues.service import Preflight


def preflight_json(
    report: Preflight, found: list[Finding], *, links_checked: bool
) -> dict[str, Any]:
    """Return {ok, items, findings, size, links_checked}; errors first, then by block."""
    ordered = sorted(found, key=lambda f: (f.level != "error", f.block or 0))
    items = [f.as_dict() for f in ordered]
    return {
        "ok": not any(f.level == "error" for f in ordered),
        "items": items,
        "findings": items,  # the name of the first version of this answer
        "size": {
            "bytes": report.html_bytes,
            "warn_bytes": WARN_BYTES,
            "clip_bytes": CLIP_BYTES,
            "percent": round(100 * report.html_bytes / CLIP_BYTES, 1),
        },
        "links_checked": links_checked,
    }
