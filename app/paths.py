"""Find the data that ships with the package: email templates, migrations, examples."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_SOURCE_ROOT = _PACKAGE.parent


def data_dir(name: str) -> Path:
    """Return the directory (or file) `name`, installed copy first, source checkout second."""
    installed = _PACKAGE / "_data" / name
    if installed.exists():
        return installed
    source = _SOURCE_ROOT / name
    if source.exists():
        return source
    raise FileNotFoundError(f"{name} not found in {installed} or {source}")


def email_templates_dir() -> Path:
    """Return the directory of the MJML templates."""
    return data_dir("email_templates")


def migrations_dir() -> Path:
    """Return the Alembic script directory."""
    return data_dir("migrations")


def examples_dir() -> Path:
    """Return the directory of the example issues."""
    return data_dir("examples")
