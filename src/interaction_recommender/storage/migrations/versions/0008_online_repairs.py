"""Users whose Redis features are behind their snapshot: repaired by the next consumer, whichever
process it runs in (a failed write no longer lives only in one process's memory).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "online_repairs",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_online_repairs"),
    )


def downgrade() -> None:
    op.drop_table("online_repairs")
