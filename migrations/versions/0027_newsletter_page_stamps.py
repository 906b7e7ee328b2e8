"""newsletter page stamps: a change of a newsletter's row moves the public pages' stamp

Revision ID: 0027
Revises: 0023
Create Date: 2026-12-07 05:10:00

Every public page shows its newsletter's name, tagline and postal address from the
`newsletters` row, so a change there must reach every process's page cache as a change of an
issue does (migration 0017): the same bump, by triggers on `newsletters`, in the writer's own
transaction, whoever writes (API, console, CLI, psql). On PostgreSQL it reuses 0017's
deferred constraint trigger function.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
SQLITE_BUMP = (
    f"BEGIN UPDATE page_stamps SET counter = counter + 1, changed_at = {SQLITE_NOW}"
    " WHERE id = 1; END"
)
SQLITE_TRIGGERS = {
    "page_stamps_newsletter_insert": "AFTER INSERT ON newsletters",
    "page_stamps_newsletter_update": "AFTER UPDATE ON newsletters",
    "page_stamps_newsletter_delete": "AFTER DELETE ON newsletters",
}
PG_TRIGGER = """
CREATE CONSTRAINT TRIGGER page_stamps_newsletter_change
AFTER INSERT OR DELETE OR UPDATE ON newsletters
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_stamps_bump()
"""


def upgrade() -> None:
    """Apply."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_TRIGGER)
        return
    for name, when in SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} FOR EACH ROW {SQLITE_BUMP}")


def downgrade() -> None:
    """Revert."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS page_stamps_newsletter_change ON newsletters")
        return
    for name in SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
