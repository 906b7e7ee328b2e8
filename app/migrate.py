"""Run Alembic from code, wherever the package is installed."""

from __future__ import annotations

import logging
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from app.paths import migrations_dir

log = logging.getLogger("morningpost.migrate")


def alembic_config(url: str) -> Config:
    """Return an Alembic config pointing at the shipped migrations and `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    # ConfigParser treats % as interpolation; URLs may carry %-escaped passwords.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class _StepLog:
    """Log each applied migration as "migration 5 of 10: what it does (revision 0008)".

    Revision ids are merge-order labels, not a sequence (0004 is followed by 0008, then
    0007…), so Alembic's own "Running upgrade 0004 -> 0008" lines read out of order; these
    count the steps in the order they run.
    """

    def __init__(self, script: ScriptDirectory, current: str | None) -> None:
        self.steps = [
            rev.revision
            for rev in reversed(list(script.iterate_revisions("heads", current or "base")))
        ]
        self.done = 0

    def __call__(self, *, step: Any, **_: Any) -> None:
        """Log one finished step (Alembic's on_version_apply callback)."""
        self.done += 1
        total = max(len(self.steps), self.done)
        script = getattr(step, "up_revision", None)
        doc = (getattr(script, "doc", "") or "").strip().splitlines()
        log.info(
            "migration %d of %d: %s (revision %s)",
            self.done,
            total,
            doc[0] if doc else "",
            getattr(script, "revision", "?"),
        )


class _QuietSteps(logging.Filter):
    """Drop Alembic's "Running upgrade A -> B" lines (and its set-up chatter): the step log
    above says it in order."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every other line."""
        return not record.getMessage().startswith(
            ("Running upgrade", "Context impl", "Will assume")
        )


def upgrade_head(engine: Engine) -> None:
    """Apply every migration (`alembic upgrade head`) over `engine`, logging steps in order."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    script = ScriptDirectory.from_config(cfg)
    quiet = _QuietSteps()
    alembic_log = logging.getLogger("alembic.runtime.migration")
    alembic_log.addFilter(quiet)
    try:
        with engine.begin() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            cfg.attributes["connection"] = conn
            cfg.attributes["on_version_apply"] = [_StepLog(script, current)]
            command.upgrade(cfg, "head")
    finally:
        alembic_log.removeFilter(quiet)
