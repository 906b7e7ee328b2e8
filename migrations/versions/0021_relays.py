"""relays: per-relay daily usage and shared state (rested, last error, rate slots)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 02:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UTCDateTime

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "relay_usage",
        sa.Column("relay", sa.String(length=60), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("relay", "day", name=op.f("pk_relay_usage")),
    )
    op.create_table(
        "relay_state",
        sa.Column("relay", sa.String(length=60), nullable=False),
        sa.Column("rested_until", UTCDateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("last_error_at", UTCDateTime(), nullable=True),
        sa.Column("next_slot", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("relay", name=op.f("pk_relay_state")),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table("relay_state")
    op.drop_table("relay_usage")
