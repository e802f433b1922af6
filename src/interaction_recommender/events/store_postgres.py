"""Event store on Postgres through asyncpg directly: the ingest hot path.

One transaction per call: lock the users, insert every new event with one `unnest` statement
(``ON CONFLICT (request_id) DO NOTHING``), insert their outbox messages with another, commit.

Per-user commit order: the transaction first takes ``pg_advisory_xact_lock(1, hash32(userId))``
for each of its users, in key order (no deadlock between batches). A later transaction of the
same user therefore draws its sequence numbers only after the earlier one committed, so per user
sequence order is commit order (docs/storage.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson

from interaction_recommender.events.messages import StoredEvent
from interaction_recommender.events.schemas import NewEvent
from interaction_recommender.events.store import EventStore
from interaction_recommender.storage.database import Database

__all__ = ["PostgresEventStore"]

USER_LOCK_NAMESPACE = 1

_LOCK_USERS = "SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k ORDER BY k"
_INSERT_EVENTS = """
INSERT INTO raw_events (event_id, request_id, event_type, user_id, movie_id,
                        client_timestamp, server_timestamp, metadata)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[],
                     $6::timestamptz[], $7::timestamptz[], $8::jsonb[])
ON CONFLICT (request_id) DO NOTHING
RETURNING request_id, sequence
"""
_INSERT_OUTBOX = """
INSERT INTO outbox (topic, message_key, payload, created_at)
SELECT $1, key, payload, $2
FROM unnest($3::text[], $4::bytea[]) WITH ORDINALITY AS m(key, payload, position)
ORDER BY position
"""
_SELECT_EXISTING = """
SELECT sequence, event_id, request_id, event_type, user_id, movie_id,
       client_timestamp, server_timestamp, metadata
FROM raw_events WHERE request_id = ANY($1::uuid[])
"""


def lock_key(user_id: UUID) -> int:
    return int.from_bytes(user_id.bytes[:4], "big", signed=True)


class PostgresEventStore(EventStore):
    def __init__(self, database: Database) -> None:
        self._engine = database.engine

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection's driver handle (SQLAlchemy's pool, so one pool per process)."""
        async with self._engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: asyncpg.Connection = raw.driver_connection
            try:
                yield driver
            except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
                await conn.invalidate()  # never hand a broken connection to the next request
                raise

    async def _store(
        self, events: Sequence[NewEvent], topic: str, now: datetime
    ) -> tuple[dict[UUID, StoredEvent], dict[UUID, StoredEvent]]:
        rows = [
            StoredEvent(
                sequence=0,  # drawn by the INSERT
                event_id=uuid4(),
                request_id=e.request_id,
                event_type=e.event_type.value,
                user_id=e.user_id,
                movie_id=e.movie_id,
                client_timestamp=e.client_timestamp or now,
                server_timestamp=now,
                metadata=e.metadata,
            )
            for e in events
        ]
        async with self._connection() as conn, conn.transaction():
            keys = sorted({lock_key(r.user_id) for r in rows})
            await conn.execute(_LOCK_USERS, USER_LOCK_NAMESPACE, keys)
            returned = await conn.fetch(_INSERT_EVENTS, *_columns(rows))
            sequence_of = {UUID(bytes=r["request_id"].bytes): r["sequence"] for r in returned}
            inserted = sorted(
                (
                    replace(r, sequence=sequence_of[r.request_id])
                    for r in rows
                    if r.request_id in sequence_of
                ),
                key=lambda e: e.sequence,
            )
            if inserted:
                messages = [e.to_message(topic) for e in inserted]
                await conn.execute(
                    _INSERT_OUTBOX,
                    topic,
                    now,
                    [m.key for m in messages],
                    [m.payload for m in messages],
                )
            missing = [r.request_id for r in rows if r.request_id not in sequence_of]
            existing = (
                {e.request_id: e for e in map(_stored, await conn.fetch(_SELECT_EXISTING, missing))}
                if missing
                else {}
            )
        return {e.request_id: e for e in inserted}, existing


def _columns(rows: Sequence[StoredEvent]) -> list[list[Any]]:
    return [
        [r.event_id for r in rows],
        [r.request_id for r in rows],
        [r.event_type for r in rows],
        [r.user_id for r in rows],
        [r.movie_id for r in rows],
        [r.client_timestamp for r in rows],
        [r.server_timestamp for r in rows],
        [orjson.dumps(r.metadata).decode() for r in rows],
    ]


def _stored(record: asyncpg.Record) -> StoredEvent:
    return StoredEvent(
        sequence=record["sequence"],
        event_id=UUID(bytes=record["event_id"].bytes),
        request_id=UUID(bytes=record["request_id"].bytes),
        event_type=record["event_type"],
        user_id=UUID(bytes=record["user_id"].bytes),
        movie_id=UUID(bytes=record["movie_id"].bytes) if record["movie_id"] else None,
        client_timestamp=record["client_timestamp"],
        server_timestamp=record["server_timestamp"],
        metadata=record["metadata"],  # decoded by the jsonb codec SQLAlchemy installs
    )
