"""ab test pauses: when a test was paused, so its decision waits out the pause

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-08 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    # A plain ADD COLUMN (no batch rebuild): NULL means "not paused".
    op.add_column(
        "ab_tests",
        sa.Column("paused_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("ab_tests") as batch_op:
        batch_op.drop_column("paused_at")
