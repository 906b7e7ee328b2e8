"""local-time sends: the wall-clock time and day of a per-reader send

Revision ID: 0009
Revises: 0005
Create Date: 2026-11-30 10:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("issues") as batch:
        batch.add_column(sa.Column("local_time", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("local_date", sa.String(length=10), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("local_date")
        batch.drop_column("local_time")
