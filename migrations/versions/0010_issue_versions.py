"""issue versions and the frozen content of a send

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0010"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("issues") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    op.create_table(
        "frozen_issues",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=250), nullable=False),
        sa.Column("preheader", sa.String(length=250), nullable=False),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("blocks", sa.JSON(), nullable=False),
        sa.Column("frozen_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_frozen_issues_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("issue_id", name=op.f("pk_frozen_issues")),
    )
    # Sends started before this revision: their content is the live row, which no edit could
    # change once they were sending (short of the race this revision closes).
    op.execute(
        "INSERT INTO frozen_issues (issue_id, version, subject, preheader, slug, blocks, frozen_at)"
        " SELECT id, version, subject, preheader, slug, blocks, COALESCE(started_at, updated_at)"
        " FROM issues WHERE status IN ('sending', 'paused', 'sent', 'cancelled')"
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table("frozen_issues")
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("version")
