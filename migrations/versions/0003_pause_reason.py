"""issue pause reason; index for the send rate; lease index only over leased rows

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 08:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("issues") as batch:
        batch.add_column(sa.Column("pause_reason", sa.String(length=500), nullable=True))
    op.create_index(
        "ix_deliveries_issue_sent_at",
        "deliveries",
        ["issue_id", "sent_at"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NOT NULL"),
        sqlite_where=sa.text("sent_at IS NOT NULL"),
    )

    # Partial: freezing a million pending rows no longer writes a million entries into it.
    op.drop_index("ix_deliveries_status_lease", table_name="deliveries")
    op.create_index(
        "ix_deliveries_status_lease",
        "deliveries",
        ["status", "lease_expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'sending'"),
        sqlite_where=sa.text("status = 'sending'"),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_index("ix_deliveries_status_lease", table_name="deliveries")
    op.create_index(
        "ix_deliveries_status_lease", "deliveries", ["status", "lease_expires_at"], unique=False
    )
    op.drop_index("ix_deliveries_issue_sent_at", table_name="deliveries")
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("pause_reason")
