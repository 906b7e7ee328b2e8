"""newsletter relay: a newsletter may name the relay its issues go through

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    # A plain ADD COLUMN (no batch rebuild): NULL means "the pool, spread by weight".
    op.add_column("newsletters", sa.Column("relay", sa.String(length=60), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("newsletters") as batch_op:
        batch_op.drop_column("relay")
