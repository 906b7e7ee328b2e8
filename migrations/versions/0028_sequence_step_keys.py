"""sequence step keys: a step keeps its identity through edits; readers' progress names it

Revision ID: 0028
Revises: 0024
Create Date: 2026-12-07 06:00:00

A reader's place was a slot number, so a reorder, an insertion or a deletion put a step they
had into their next slot (sent twice) or moved one they had not had behind them (skipped).
Each step now has a key shared by its versions, and `sequence_reader_steps` holds the keys
each reader is done with. Until now a slot was a step, so existing steps get the key of their
position ("p0", "p1", …) and each reader is done with the slots before their `next_step`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

steps = sa.table(
    "sequence_steps",
    sa.column("sequence_id", sa.Integer()),
    sa.column("position", sa.Integer()),
    sa.column("key", sa.String()),
)
readers = sa.table(
    "sequence_readers",
    sa.column("id", sa.Integer()),
    sa.column("sequence_id", sa.Integer()),
    sa.column("next_step", sa.Integer()),
)
done = sa.table(
    "sequence_reader_steps",
    sa.column("reader_id", sa.Integer()),
    sa.column("step_key", sa.String()),
    sa.column("skipped", sa.Boolean()),
)


def upgrade() -> None:
    """Apply."""
    op.add_column("sequence_steps", sa.Column("key", sa.String(length=16), nullable=True))
    op.execute(steps.update().values(key=sa.literal("p") + sa.cast(steps.c.position, sa.String())))
    with op.batch_alter_table("sequence_steps") as batch:
        batch.alter_column("key", existing_type=sa.String(length=16), nullable=False)
    op.create_table(
        "sequence_reader_steps",
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("step_key", sa.String(length=16), nullable=False),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reader_id"],
            ["sequence_readers.id"],
            name=op.f("fk_sequence_reader_steps_reader_id_sequence_readers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reader_id", "step_key", name=op.f("pk_sequence_reader_steps")),
    )
    # Every slot a reader has passed, counted over all versions (a slot deleted since still
    # counts: the reader had it).
    slots = sa.select(steps.c.sequence_id, steps.c.position, steps.c.key).distinct().subquery()
    op.execute(
        done.insert().from_select(
            ["reader_id", "step_key", "skipped"],
            sa.select(readers.c.id, slots.c.key, sa.false()).join(
                slots,
                sa.and_(
                    slots.c.sequence_id == readers.c.sequence_id,
                    slots.c.position < readers.c.next_step,
                ),
            ),
        )
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table("sequence_reader_steps")
    with op.batch_alter_table("sequence_steps") as batch:
        batch.drop_column("key")
