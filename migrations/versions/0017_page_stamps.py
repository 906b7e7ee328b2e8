"""page stamps: one row whose counter moves whenever a public page may show something new

Revision ID: 0017
Revises: 0011
Create Date: 2026-12-07 02:00:00

Triggers on `issues` bump it in the writer's own transaction, whoever the writer is. On
PostgreSQL the trigger is a deferred constraint trigger: the stamp row is locked only at
commit, as every transaction's last lock, so two writers of different issues never deadlock
on it and a long transaction (freezing a send's recipients) does not hold it for long.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0017"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns a public page shows (subject, blocks, dates) or is chosen by (slug, status).
PAGE_COLUMNS = "slug, subject, preheader, blocks, status, send_at, started_at, created_at"
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
SQLITE_BUMP = (
    f"BEGIN UPDATE page_stamps SET counter = counter + 1, changed_at = {SQLITE_NOW}"
    " WHERE id = 1; END"
)
SQLITE_TRIGGERS = {
    "page_stamps_issue_insert": "AFTER INSERT ON issues",
    "page_stamps_issue_update": f"AFTER UPDATE OF {PAGE_COLUMNS} ON issues",
    "page_stamps_issue_delete": "AFTER DELETE ON issues",
}
PG_FUNCTION = """
CREATE FUNCTION page_stamps_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE page_stamps SET counter = counter + 1, changed_at = clock_timestamp() WHERE id = 1;
    RETURN NULL;
END $$
"""
PG_TRIGGER = f"""
CREATE CONSTRAINT TRIGGER page_stamps_issue_change
AFTER INSERT OR DELETE OR UPDATE OF {PAGE_COLUMNS} ON issues
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION page_stamps_bump()
"""


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "page_stamps",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("counter", sa.Integer(), nullable=False),
        sa.Column("changed_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_stamps")),
    )
    stamps = sa.table(
        "page_stamps",
        sa.column("id", sa.Integer()),
        sa.column("counter", sa.Integer()),
        sa.column("changed_at", app.models.base.UTCDateTime(timezone=True)),
        sa.column("site", sa.String()),
    )
    op.bulk_insert(
        stamps, [{"id": 1, "counter": 0, "changed_at": app.models.base.utcnow(), "site": ""}]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
        return
    for name, when in SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} FOR EACH ROW {SQLITE_BUMP}")


def downgrade() -> None:
    """Revert."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS page_stamps_issue_change ON issues")
        op.execute("DROP FUNCTION IF EXISTS page_stamps_bump()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("page_stamps")
