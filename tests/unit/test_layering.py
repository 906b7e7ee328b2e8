"""The send core depends on nothing above it (issue 10, item 1; issue 18, item 3).

`app/sends/` never imports the domains above it (subscribers, suppressions, bounces, webhooks,
clicks, housekeeping, issues) or any edge (HTTP, console, CLI, the app, metrics): what it must
tell them (bounced readers, finished sends) it returns as facts, and the worker is handed
callables for them (app/delivery.py wires them). Inside it the stream does not import the
worker: it is handed narrow collaborators (ports.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

SENDS = Path(__file__).resolve().parents[2] / "app" / "sends"
DOMAINS = (
    "app.subscribers",
    "app.suppressions",
    "app.bounces",
    "app.webhooks",
    "app.clicks",
    "app.housekeeping",
    "app.issues",
)
EDGES = (
    "app.web",
    "app.console",
    "app.cli",
    "app.cli_editor",
    "app.main",
    "app.deps",
    "app.metrics",
    "app.delivery",
)
ABOVE = DOMAINS + EDGES


def _imports(path: Path) -> set[str]:
    """Every module a file imports, TYPE_CHECKING blocks and function bodies included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _above(module: str) -> bool:
    return any(module == layer or module.startswith(layer + ".") for layer in ABOVE)


def test_sends_never_imports_the_layers_above_it() -> None:
    offenders = {
        f"{path.relative_to(SENDS.parent.parent)} imports {module}"
        for path in SENDS.rglob("*.py")
        for module in _imports(path)
        if _above(module)
    }
    assert offenders == set()


def test_the_stream_does_not_import_the_worker() -> None:
    assert not any(m.startswith("app.sends.worker") for m in _imports(SENDS / "stream.py"))


def test_the_stream_knows_its_collaborators_by_their_ports_only() -> None:
    """The stream is handed a message source, a ledger port and throttles (issue 18, item 4)."""
    hosts = ("worker", "ledger_port", "commits", "outbox", "reaper", "host")
    for name in ("stream.py", "handover.py"):
        imported = _imports(SENDS / name)
        assert not {m for m in imported for h in hosts if m.startswith(f"app.sends.{h}")}, name


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from app.issues.service import stats\n")
    assert any(_above(m) for m in _imports(bad))


def test_the_check_catches_every_layer_above(tmp_path: Path) -> None:
    for layer in ABOVE:
        bad = tmp_path / "bad.py"
        bad.write_text(f"import {layer}.anything\nfrom {layer} import thing\n")
        assert all(_above(m) for m in _imports(bad)), layer
    sibling = tmp_path / "ok.py"
    sibling.write_text("from app import models\nfrom app.sends.store import ledger\n")
    assert not any(_above(m) for m in _imports(sibling))
