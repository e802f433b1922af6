"""The movie catalog.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "movies",
        sa.Column("movie_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(500), nullable=True),
        sa.Column("genres", _json, nullable=True),
        sa.Column("release_year", sa.Integer(), nullable=True),
        sa.Column("release_date", sa.Date(), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("minimum_age", sa.Integer(), nullable=True),
        sa.Column("country", sa.String(100), nullable=True),
        sa.Column("available", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("tags", _json, nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("movie_id", name="pk_movies"),
    )
    op.create_index("ix_movies_updated_at", "movies", ["updated_at"])
    op.create_index("ix_movies_source", "movies", ["source"])


def downgrade() -> None:
    op.drop_table("movies")
