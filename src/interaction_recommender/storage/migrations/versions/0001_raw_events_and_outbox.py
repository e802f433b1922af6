"""Raw events (append-only, idempotent by request id) and the transactional outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_big_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "raw_events",
        sa.Column("sequence", _big_pk, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("movie_id", sa.Uuid(), nullable=True),
        sa.Column("client_timestamp", _ts, nullable=False),
        sa.Column("server_timestamp", _ts, nullable=False),
        sa.Column("metadata", _json, nullable=False),
        sa.PrimaryKeyConstraint("sequence", name="pk_raw_events"),
        sa.UniqueConstraint("request_id", name="uq_raw_events_request_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_raw_events_user_id_sequence", "raw_events", ["user_id", "sequence"])
    op.create_index("ix_raw_events_movie_id_sequence", "raw_events", ["movie_id", "sequence"])

    op.create_table(
        "outbox",
        sa.Column("id", _big_pk, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("message_key", sa.String(200), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("sent_at", _ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at"], postgresql_using="brin")


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("raw_events")
