"""The model store: immutable versions (bundles in chunks), names that point at them, the
history of every move, and the shared signing key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ts = sa.DateTime(timezone=True)
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("manifest", _json, nullable=False),
        sa.Column("trained_for", sa.String(100), nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_model_versions"),
        sa.UniqueConstraint("content_sha256", name="uq_model_versions_content_sha256"),
    )
    op.create_table(
        "model_chunks",
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("version", "seq", name="pk_model_chunks"),
        sa.ForeignKeyConstraint(
            ["version"],
            ["model_versions.version"],
            name="fk_model_chunks_version_model_versions",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "model_names",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("training_config", _json, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_model_names"),
        sa.ForeignKeyConstraint(
            ["version"], ["model_versions.version"], name="fk_model_names_version_model_versions"
        ),
    )
    op.create_table(
        "model_moves",
        sa.Column("move_id", _id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("previous_version", sa.String(200), nullable=True),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("moved_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("move_id", name="pk_model_moves"),
    )
    op.create_index("ix_model_moves_name_move_id", "model_moves", ["name", "move_id"])
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.String(500), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_service_secrets"),
    )


def downgrade() -> None:
    op.drop_table("service_secrets")
    op.drop_index("ix_model_moves_name_move_id", table_name="model_moves")
    op.drop_table("model_moves")
    op.drop_table("model_names")
    op.drop_table("model_chunks")
    op.drop_table("model_versions")
