"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/versions`` create them; this
module is what the repositories query."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
)

from interaction_recommender.storage.types import BigIntPK, JsonDocument, UTCDateTime

__all__ = ["metadata", "outbox", "raw_events"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Append-only log of every accepted event. `sequence` is monotonic; per user it is also commit
# order, because ingest transactions of one user serialize on an advisory lock (see
# events/repository.py). `request_id` is the idempotency key for as long as the row is kept.
raw_events = Table(
    "raw_events",
    metadata,
    Column("sequence", BigIntPK, primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("request_id", Uuid, nullable=False, unique=True),
    Column("event_type", String(16), nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("movie_id", Uuid, nullable=True),
    Column("client_timestamp", UTCDateTime, nullable=False),
    Column("server_timestamp", UTCDateTime, nullable=False),
    Column("metadata", JsonDocument, nullable=False),
    Index(None, "user_id", "sequence"),
    Index(None, "movie_id", "sequence"),
    sqlite_autoincrement=True,
)

# Transactional outbox: a message is written in the same transaction as the data it announces
# and published by the relay after commit. Generic (topic, key, value bytes) so every concern can
# publish durably; the relay knows nothing about events.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("message_key", String(200), nullable=True),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    sqlite_autoincrement=True,
)
Index(
    "ix_outbox_unsent",
    outbox.c.id,
    postgresql_where=outbox.c.sent_at.is_(None),
    sqlite_where=outbox.c.sent_at.is_(None),
)
Index("ix_outbox_sent_at", outbox.c.sent_at)
Index("ix_outbox_message_key", outbox.c.message_key)
