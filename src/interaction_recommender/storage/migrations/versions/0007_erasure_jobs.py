"""Erasure as a durable job: one audit row per erasure (no personal data), the erasure a user's
row points at, and the check ingest makes in its own statement.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ts = sa.DateTime(timezone=True)

# PL/pgSQL and VOLATILE on purpose: each call takes a fresh snapshot, so an ingest statement that
# waited for an erasure's user lock sees the erasure that just committed (a plain subquery, or an
# inlined SQL function, would use the statement's older snapshot and store the event).
_USER_IS_ERASED = """
CREATE OR REPLACE FUNCTION user_is_erased(candidate uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM erased_users WHERE user_id = candidate);
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("erasure_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("steps", _json, nullable=False),
        sa.Column("requested_at", _ts, nullable=False),
        sa.Column("next_attempt_at", _ts, nullable=False),
        sa.Column("completed_at", _ts, nullable=True),
        sa.PrimaryKeyConstraint("erasure_id", name="pk_erasures"),
    )
    op.create_index(
        "ix_erasures_pending",
        "erasures",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.add_column("erased_users", sa.Column("erasure_id", sa.Uuid(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_USER_IS_ERASED)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS user_is_erased(uuid)")
    op.drop_column("erased_users", "erasure_id")
    op.drop_index("ix_erasures_pending", table_name="erasures")
    op.drop_table("erasures")
