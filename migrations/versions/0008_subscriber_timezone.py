"""subscriber time zone (IANA name) for local-time sends

Revision ID: 0008
Revises: 0003
Create Date: 2026-11-30 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    # Existing readers get UTC: the migration cannot know better, and UTC is the documented default.
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(
            sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC")
        )


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("timezone")
