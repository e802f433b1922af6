"""Outbox rows the bus refuses for good (too large) are set aside instead of blocking the relay.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ts = sa.DateTime(timezone=True)
_PENDING = "sent_at IS NULL AND set_aside_at IS NULL"


def upgrade() -> None:
    op.add_column("outbox", sa.Column("set_aside_at", _ts, nullable=True))
    op.add_column("outbox", sa.Column("set_aside_reason", sa.String(300), nullable=True))
    # The relay's claim index covers only what it may still publish.
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        postgresql_where=sa.text(_PENDING),
        sqlite_where=sa.text(_PENDING),
    )
    op.create_index(
        "ix_outbox_set_aside",
        "outbox",
        ["id"],
        postgresql_where=sa.text("set_aside_at IS NOT NULL"),
        sqlite_where=sa.text("set_aside_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_set_aside", table_name="outbox")
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    op.drop_column("outbox", "set_aside_reason")
    op.drop_column("outbox", "set_aside_at")
