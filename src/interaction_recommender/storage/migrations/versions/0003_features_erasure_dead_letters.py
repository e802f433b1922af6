"""User feature snapshots, erased users, dead letters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_big_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "user_features",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_user_features"),
    )
    op.create_table(
        "erased_users",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("erased_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_erased_users"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", _big_pk, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("message_key", sa.String(200), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("error", sa.String(1000), nullable=False),
        sa.Column("error_type", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("failed_at", _ts, nullable=False),
        sa.Column("replayed_at", _ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_dead_letters_user_id", "dead_letters", ["user_id"])


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("erased_users")
    op.drop_table("user_features")
