"""automations belong to a newsletter; the built-in welcome sequence

Revision ID: 0025
Revises: 0023
Create Date: 2026-12-07 04:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    # Plain ADD COLUMNs (no table rebuilds). The sequences' old `newsletter` text column is
    # superseded by newsletter_id (a slug can be renamed; the id cannot) and left unused.
    op.add_column(
        "sequences", sa.Column("newsletter_id", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column("sequences", sa.Column("builtin", sa.String(length=16), nullable=True))
    op.create_index("ux_sequences_builtin", "sequences", ["newsletter_id", "builtin"], unique=True)
    op.add_column(
        "feeds", sa.Column("newsletter_id", sa.Integer(), server_default="1", nullable=False)
    )


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("newsletter_id")
    op.drop_index("ux_sequences_builtin", table_name="sequences")
    with op.batch_alter_table("sequences") as batch:
        batch.drop_column("builtin")
        batch.drop_column("newsletter_id")
