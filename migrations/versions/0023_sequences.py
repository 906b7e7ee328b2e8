"""sequences: welcome series and drips, and issues held open by an automation

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models.base import UTCDateTime

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    # Plain ADD COLUMNs: a batch rebuild of `issues` on SQLite would drop the page-stamp
    # triggers (migration 0017).
    op.add_column(
        "issues", sa.Column("held_open", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("issues", sa.Column("automation", sa.String(length=16), nullable=True))
    op.create_table(
        "sequences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("trigger", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("backfill", sa.Boolean(), nullable=False),
        sa.Column("newsletter", sa.String(length=120), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequences")),
    )
    op.create_table(
        "sequence_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("template_issue_id", sa.Integer(), nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=False),
        sa.Column("carrier_issue_id", sa.Integer(), nullable=False),
        sa.Column("after", sa.String(length=40), nullable=False),
        sa.Column("at", sa.String(length=5), nullable=True),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sequence_id"],
            ["sequences.id"],
            name=op.f("fk_sequence_steps_sequence_id_sequences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_issue_id"],
            ["issues.id"],
            name=op.f("fk_sequence_steps_template_issue_id_issues"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["carrier_issue_id"],
            ["issues.id"],
            name=op.f("fk_sequence_steps_carrier_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequence_steps")),
    )
    op.create_index("ix_sequence_steps_sequence_id", "sequence_steps", ["sequence_id", "position"])
    op.create_table(
        "sequence_readers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sequence_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("triggered_at", UTCDateTime(), nullable=False),
        sa.Column("next_step", sa.Integer(), nullable=False),
        sa.Column("next_due_at", UTCDateTime(), nullable=True),
        sa.Column("last_carrier_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sequence_id"],
            ["sequences.id"],
            name=op.f("fk_sequence_readers_sequence_id_sequences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_sequence_readers_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["last_carrier_id"],
            ["issues.id"],
            name=op.f("fk_sequence_readers_last_carrier_id_issues"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequence_readers")),
        sa.UniqueConstraint(
            "sequence_id",
            "subscriber_id",
            name=op.f("uq_sequence_readers_sequence_id_subscriber_id"),
        ),
    )
    op.create_index("ix_sequence_readers_due", "sequence_readers", ["sequence_id", "next_due_at"])
    op.create_table(
        "ab_tests",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("subjects", sa.JSON(), nullable=False),
        sa.Column("carriers", sa.JSON(), nullable=False),
        sa.Column("sample_percent", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("decide_at", UTCDateTime(), nullable=False),
        sa.Column("winner", sa.Integer(), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_ab_tests_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("issue_id", name=op.f("pk_ab_tests")),
    )
    op.create_index("ix_ab_tests_decide", "ab_tests", ["winner", "decide_at"])


def downgrade() -> None:
    """Revert."""
    op.drop_index("ix_ab_tests_decide", table_name="ab_tests")
    op.drop_table("ab_tests")
    op.drop_index("ix_sequence_readers_due", table_name="sequence_readers")
    op.drop_table("sequence_readers")
    op.drop_index("ix_sequence_steps_sequence_id", table_name="sequence_steps")
    op.drop_table("sequence_steps")
    op.drop_table("sequences")
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("automation")
        batch.drop_column("held_open")
