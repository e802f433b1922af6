"""Impressions and feedback.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "impressions",
        sa.Column("recommendation_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("context", sa.String(200), nullable=False),
        sa.Column("policy", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("items", _json, nullable=False),
        sa.Column("shown_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("recommendation_id", name="pk_impressions"),
    )
    op.create_index("ix_impressions_user_id_shown_at", "impressions", ["user_id", "shown_at"])
    op.create_index("ix_impressions_shown_at", "impressions", ["shown_at"], postgresql_using="brin")
    op.create_table(
        "feedback",
        sa.Column("feedback_id", sa.Uuid(), nullable=False),
        sa.Column("dedupe_key", sa.String(100), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("recommendation_id", sa.Uuid(), nullable=True),
        sa.Column("join_method", sa.String(20), nullable=False),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("context", sa.String(200), nullable=True),
        sa.Column("model_version", sa.String(200), nullable=True),
        sa.Column("impression_count", sa.Integer(), nullable=False),
        sa.Column("clicked_item_id", sa.Uuid(), nullable=True),
        sa.Column("click_position", sa.Integer(), nullable=True),
        sa.Column("watch_time_sec", sa.Integer(), nullable=True),
        sa.Column("occurred_at", _ts, nullable=False),
        sa.Column("received_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("feedback_id", name="pk_feedback"),
        sa.UniqueConstraint("dedupe_key", name="uq_feedback_dedupe_key"),
    )
    op.create_index("ix_feedback_user_id_occurred_at", "feedback", ["user_id", "occurred_at"])
    op.create_index("ix_feedback_recommendation_id", "feedback", ["recommendation_id"])
    op.create_index("ix_feedback_received_at", "feedback", ["received_at"], postgresql_using="brin")


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("impressions")
