"""Run Alembic from code, wherever the package is installed."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from app.paths import migrations_dir


def alembic_config(url: str) -> Config:
    """Return an Alembic config pointing at the shipped migrations and `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    # ConfigParser treats % as interpolation; URLs may carry %-escaped passwords.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_head(engine: Engine) -> None:
    """Apply every migration (`alembic upgrade head`) over `engine`."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
