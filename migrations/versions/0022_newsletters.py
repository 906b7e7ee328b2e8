"""newsletters: several lists, who takes which, the newsletter of each issue

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UTCDateTime

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    newsletters = op.create_table(
        "newsletters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("tagline", sa.String(length=300), nullable=True),
        sa.Column("from_address", sa.String(length=320), nullable=True),
        sa.Column("reply_to", sa.String(length=320), nullable=True),
        sa.Column("postal_address", sa.Text(), nullable=True),
        sa.Column("list_id", sa.String(length=255), nullable=True),
        sa.Column("is_default", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_newsletters")),
        sa.UniqueConstraint("slug", name=op.f("uq_newsletters_slug")),
    )
    # The default newsletter: its empty fields fall back to today's settings (NEWSLETTER_NAME,
    # FROM, POSTAL_ADDRESS, ...), so an install that changes nothing sends what it sent before.
    now = sa.func.current_timestamp()
    op.execute(
        newsletters.insert().values(
            id=1, slug="default", is_default=True, created_at=now, updated_at=now
        )
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval('newsletters_id_seq', 1)")
    op.create_table(
        "subscriptions",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["newsletter_id"],
            ["newsletters.id"],
            name=op.f("fk_subscriptions_newsletter_id_newsletters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriptions_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber_id", "newsletter_id", name=op.f("pk_subscriptions")),
    )
    op.create_index(
        "ix_subscriptions_newsletter_status",
        "subscriptions",
        ["newsletter_id", "status", "subscriber_id"],
    )
    # Every reader takes the default newsletter, in the standing they have with the list.
    op.execute(
        "INSERT INTO subscriptions (subscriber_id, newsletter_id, status, created_at, updated_at) "
        "SELECT id, 1, CASE status WHEN 'active' THEN 'active' WHEN 'pending' THEN 'pending' "
        "ELSE 'unsubscribed' END, created_at, created_at FROM subscribers"
    )
    op.add_column(
        "issues", sa.Column("newsletter_id", sa.Integer(), server_default="1", nullable=False)
    )
    op.create_index(op.f("ix_issues_newsletter_id"), "issues", ["newsletter_id"])
    op.add_column("issues", sa.Column("audience_filter", sa.Text(), nullable=True))
    op.add_column("segments", sa.Column("newsletter_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Revert."""
    op.drop_column("segments", "newsletter_id")
    op.drop_column("issues", "audience_filter")
    op.drop_index(op.f("ix_issues_newsletter_id"), table_name="issues")
    op.drop_column("issues", "newsletter_id")
    op.drop_index("ix_subscriptions_newsletter_status", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("newsletters")
