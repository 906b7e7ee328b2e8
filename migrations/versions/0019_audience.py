"""audience: reader attributes, tags and saved segments

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 02:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UTCDateTime

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    # A plain ADD COLUMN on both databases: a batch rebuild would lose SQLite's AUTOINCREMENT.
    op.add_column(
        "subscribers", sa.Column("attributes", sa.JSON(), server_default="{}", nullable=False)
    )
    op.create_table(
        "subscriber_tags",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriber_tags_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber_id", "tag", name=op.f("pk_subscriber_tags")),
    )
    op.create_index(
        "ix_subscriber_tags_tag_subscriber", "subscriber_tags", ["tag", "subscriber_id"]
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filter", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )
    op.create_index("ix_clicks_subscriber_clicked", "clicks", ["subscriber_id", "clicked_at"])


def downgrade() -> None:
    """Revert."""
    op.drop_index("ix_clicks_subscriber_clicked", table_name="clicks")
    op.drop_table("segments")
    op.drop_index("ix_subscriber_tags_tag_subscriber", table_name="subscriber_tags")
    op.drop_table("subscriber_tags")
    op.drop_column("subscribers", "attributes")
