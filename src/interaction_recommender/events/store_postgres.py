"""Event store on Postgres through asyncpg directly: the ingest hot path.

One statement per call, which Postgres runs as one transaction: lock the users, insert every new
event (``ON CONFLICT (request_id) DO NOTHING``), insert an outbox message for each inserted event
with the sequence number the insert drew, and commit. A single event costs one round trip; the
statement returns after the commit, so ``accepted`` is only ever answered for committed rows.

Per-user commit order: the statement first takes ``pg_advisory_xact_lock(1, hash32(userId))`` for
each of its users, in key order (batches cannot deadlock), before any sequence number is drawn
(the lock CTE is an InitPlan of the insert's row source). A later transaction of the same user
therefore draws its numbers only after the earlier one committed: per user, sequence order is
commit order (docs/storage.md).

Erased users: ``erased_among`` (migration 0009) runs once, after the locks, with a snapshot of
its own, so an event that waited for an erasure's lock sees that erasure and is not stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from interaction_recommender.events.messages import StoredEvent
from interaction_recommender.events.schemas import NewEvent
from interaction_recommender.events.store import EventStore, new_event_ids
from interaction_recommender.outbox.repository import outbox_committed
from interaction_recommender.storage.database import Database

__all__ = ["USER_LOCK_NAMESPACE", "PostgresEventStore", "lock_key"]

USER_LOCK_NAMESPACE = 1

_INGEST = """
WITH locks AS MATERIALIZED (
    SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k ORDER BY k
),
erased AS MATERIALIZED (
    SELECT erased_among($6::uuid[], (SELECT count(*) FROM locks)) AS ids
),
inserted AS (
    INSERT INTO raw_events (event_id, request_id, event_type, user_id, movie_id,
                            client_timestamp, server_timestamp, metadata)
    SELECT e.* FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::uuid[], $7::uuid[],
                           $8::timestamptz[], $9::timestamptz[], $10::jsonb[])
         AS e(event_id, request_id, event_type, user_id, movie_id,
              client_timestamp, server_timestamp, metadata)
    WHERE NOT e.user_id = ANY((SELECT ids FROM erased)::uuid[])
    ON CONFLICT (request_id) DO NOTHING
    RETURNING request_id, sequence
),
messages AS (
    INSERT INTO outbox (topic, message_key, payload, created_at)
    SELECT $11, m.message_key, m.head || convert_to(i.sequence::text, 'UTF8') || m.tail, $12
    FROM unnest($4::uuid[], $13::text[], $14::bytea[], $15::bytea[])
         AS m(request_id, message_key, head, tail)
    JOIN inserted AS i USING (request_id)
    ORDER BY i.sequence
)
SELECT request_id, sequence FROM inserted
"""

_SELECT_ERASED = "SELECT user_id FROM erased_users WHERE user_id = ANY($1::uuid[])"

_SELECT_EXISTING = """
SELECT sequence, event_id, request_id, event_type, user_id, movie_id,
       client_timestamp, server_timestamp, metadata::text AS metadata
FROM raw_events WHERE request_id = ANY($1::uuid[])
"""


def lock_key(user_id: UUID) -> int:
    return int.from_bytes(user_id.bytes[:4], "big", signed=True)


class PostgresEventStore(EventStore):
    def __init__(self, database: Database, *, acquire_timeout_s: float) -> None:
        self._database = database
        self._acquire_timeout_s = acquire_timeout_s

    async def _erased(self, user_ids: set[UUID]) -> set[UUID]:
        pool = await self._database.driver_pool()
        async with pool.acquire(timeout=self._acquire_timeout_s) as conn:
            rows = await conn.fetch(_SELECT_ERASED, list(user_ids))
        return {_uuid(r["user_id"]) for r in rows}

    async def _store(
        self, events: Sequence[NewEvent], topic: str, now: datetime
    ) -> tuple[dict[UUID, StoredEvent], dict[UUID, StoredEvent]]:
        rows = [
            StoredEvent(
                sequence=0,  # drawn by the INSERT
                event_id=event_id,
                request_id=e.request_id,
                event_type=e.event_type.value,
                user_id=e.user_id,
                movie_id=e.movie_id,
                client_timestamp=e.client_timestamp or now,
                server_timestamp=now,
                metadata=e.metadata,
            )
            for e, event_id in zip(events, new_event_ids(len(events)), strict=True)
        ]
        parts = [r.message_parts() for r in rows]
        pool = await self._database.driver_pool()
        async with pool.acquire(timeout=self._acquire_timeout_s) as conn:
            returned = await conn.fetch(
                _INGEST,
                USER_LOCK_NAMESPACE,
                sorted({lock_key(r.user_id) for r in rows}),
                [r.event_id for r in rows],
                [r.request_id for r in rows],
                [r.event_type for r in rows],
                [r.user_id for r in rows],
                [r.movie_id for r in rows],
                [r.client_timestamp for r in rows],
                [r.server_timestamp for r in rows],
                [orjson.dumps(r.metadata).decode() for r in rows],
                topic,
                now,
                [str(r.user_id) for r in rows],
                [head for head, _ in parts],
                [tail for _, tail in parts],
            )
            # asyncpg's UUIDs hash and compare equal to uuid.UUID: no conversion needed.
            sequence_of = {r["request_id"]: r["sequence"] for r in returned}
            missing = [r.request_id for r in rows if r.request_id not in sequence_of]
            existing = (
                {s.request_id: s for s in map(_stored, await conn.fetch(_SELECT_EXISTING, missing))}
                if missing
                else {}
            )
        inserted = {}
        for row in rows:
            sequence = sequence_of.get(row.request_id)
            if sequence is not None:
                row.sequence = sequence
                inserted[row.request_id] = row
        if inserted:  # committed (the statement is its own transaction): the relay may publish
            outbox_committed(self._database)
        return inserted, existing


def _uuid(value: Any) -> UUID:
    return UUID(bytes=value.bytes)  # asyncpg's own UUID type -> the standard one


def _stored(record: asyncpg.Record) -> StoredEvent:
    return StoredEvent(
        sequence=record["sequence"],
        event_id=_uuid(record["event_id"]),
        request_id=_uuid(record["request_id"]),
        event_type=record["event_type"],
        user_id=_uuid(record["user_id"]),
        movie_id=_uuid(record["movie_id"]) if record["movie_id"] is not None else None,
        client_timestamp=record["client_timestamp"],
        server_timestamp=record["server_timestamp"],
        metadata=orjson.loads(record["metadata"]),
    )
