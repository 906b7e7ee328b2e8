"""hardening: subscriber ids never reused on SQLite; a per-subscriber list-token nonce

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-30 10:30:00
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import op

from app.models.base import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Evaluated per row, so every existing subscriber gets its own random nonce: 8 hex
# characters (a subset of the url-safe alphabet new rows draw from in app.tokens.new_nonce).
NONCE_DEFAULT = {
    "sqlite": "(lower(hex(randomblob(4))))",
    "postgresql": "substr(md5(random()::text || clock_timestamp()::text), 1, 8)",
}


@contextmanager
def _sqlite_foreign_keys_off(bind: Any) -> Iterator[None]:
    """Rebuild a parent table without firing ON DELETE actions (SQLite's 12-step recipe).

    Dropping the old `subscribers` table with foreign keys on would null every delivery's
    subscriber_id and delete every outbox row. The pragma only takes effect outside a
    transaction, so the migration's transaction is committed first and reopened after.
    """
    raw = bind.connection.driver_connection
    if raw.in_transaction:
        raw.execute("COMMIT")
    raw.execute("PRAGMA foreign_keys=OFF")
    raw.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        # Leave the connection as the pool expects it: foreign keys on, inside a transaction.
        raw.execute("ROLLBACK")
        raw.execute("PRAGMA foreign_keys=ON")
        raw.execute("BEGIN IMMEDIATE")
        raise
    problems = raw.execute("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"foreign key check failed after the rebuild: {problems[:5]}")
    raw.execute("COMMIT")
    raw.execute("PRAGMA foreign_keys=ON")
    raw.execute("BEGIN IMMEDIATE")


def upgrade() -> None:
    """Apply."""
    bind = op.get_bind()
    dialect = bind.dialect.name
    column = sa.Column(
        "token_nonce",
        sa.String(length=8),
        nullable=False,
        server_default=sa.text(NONCE_DEFAULT.get(dialect, NONCE_DEFAULT["postgresql"])),
    )
    with op.batch_alter_table("editor_tokens") as batch:
        batch.add_column(sa.Column("expires_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_at", UTCDateTime(timezone=True), nullable=True))
    if dialect != "sqlite":
        # PostgreSQL sequences never hand out an id twice: only the nonce is new.
        op.add_column("subscribers", column)
        return
    # AUTOINCREMENT can only be had by creating the table anew.
    with (
        _sqlite_foreign_keys_off(bind),
        op.batch_alter_table(
            "subscribers", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch,
    ):
        batch.add_column(column)


def downgrade() -> None:
    """Revert (the SQLite table keeps AUTOINCREMENT: harmless, and a rebuild is not)."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with _sqlite_foreign_keys_off(bind), op.batch_alter_table("subscribers") as batch:
            batch.drop_column("token_nonce")
    else:
        op.drop_column("subscribers", "token_nonce")
    with op.batch_alter_table("editor_tokens") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("expires_at")
