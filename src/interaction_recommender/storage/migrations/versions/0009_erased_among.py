"""Ingest checks erased users once per statement instead of once per row: `erased_among`
replaces `user_is_erased` (bench/erased_check.py measures both).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PL/pgSQL and VOLATILE on purpose: the call takes a fresh snapshot, so an ingest statement that
# waited for an erasure's user lock sees the erasure that just committed (a plain subquery, or an
# inlined SQL function, would use the statement's older snapshot and store the event). The second
# argument only orders the call after the statement's user locks (events/store_postgres.py).
_ERASED_AMONG = """
CREATE OR REPLACE FUNCTION erased_among(candidates uuid[], after_locks bigint) RETURNS uuid[]
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN coalesce(
        (SELECT array_agg(user_id) FROM erased_users WHERE user_id = ANY(candidates)), '{}'
    );
END
$$
"""

_USER_IS_ERASED = """
CREATE OR REPLACE FUNCTION user_is_erased(candidate uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM erased_users WHERE user_id = candidate);
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_ERASED_AMONG)
        op.execute("DROP FUNCTION IF EXISTS user_is_erased(uuid)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_USER_IS_ERASED)
        op.execute("DROP FUNCTION IF EXISTS erased_among(uuid[], bigint)")
