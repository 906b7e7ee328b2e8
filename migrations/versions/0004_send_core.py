"""send core: rows handed to SMTP, requeued unknowns, relay alerts, per-recipient log indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("deliveries") as batch:
        # Set in small groups just before rows go on the wire: after a crash only these can
        # be `unknown`; claimed rows never handed over go back to the queue.
        batch.add_column(sa.Column("handed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("requeued_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("issues") as batch:
        batch.add_column(sa.Column("alert", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("alert_at", sa.DateTime(timezone=True), nullable=True))
    # The per-recipient log pages by id within an issue or a subscriber (keyset, not OFFSET).
    op.create_index("ix_deliveries_issue_id_id", "deliveries", ["issue_id", "id"])
    op.create_index("ix_deliveries_subscriber_id_id", "deliveries", ["subscriber_id", "id"])


def downgrade() -> None:
    """Revert."""
    op.drop_index("ix_deliveries_subscriber_id_id", table_name="deliveries")
    op.drop_index("ix_deliveries_issue_id_id", table_name="deliveries")
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("alert_at")
        batch.drop_column("alert")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("requeued_at")
        batch.drop_column("handed_at")
