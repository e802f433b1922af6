"""All SQL of event ingestion."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Integer, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.events.messages import StoredEvent
from interaction_recommender.events.schemas import EventType, NewEvent
from interaction_recommender.storage.tables import raw_events

__all__ = ["EventRepository"]

_USER_LOCK_NAMESPACE = 1  # pg_advisory_xact_lock(namespace, key); see docs/storage.md

_LOCK_USERS = text(
    "SELECT pg_advisory_xact_lock(:ns, k) FROM unnest(:keys) AS k ORDER BY k"
).bindparams(bindparam("keys", type_=postgresql.ARRAY(Integer)))

_COLUMNS = (
    raw_events.c.sequence,
    raw_events.c.event_id,
    raw_events.c.request_id,
    raw_events.c.event_type,
    raw_events.c.user_id,
    raw_events.c.movie_id,
    raw_events.c.client_timestamp,
    raw_events.c.server_timestamp,
    raw_events.c.metadata,
)


def _lock_key(user_id: UUID) -> int:
    return int.from_bytes(user_id.bytes[:4], "big", signed=True)


class EventRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"

    async def lock_users(self, user_ids: Iterable[UUID]) -> None:
        """Serialize this transaction with every other one writing events of the same users.

        This is what makes per-user `sequence` order equal commit order: a later transaction of
        the same user takes its sequence numbers only after the earlier one committed. Different
        users do not wait for each other (except on a rare 32-bit hash collision). Locks are taken
        in key order, so two batches cannot deadlock. SQLite serializes all writers anyway.
        """
        if not self._postgres:
            return
        keys = sorted({_lock_key(u) for u in user_ids})
        if len(keys) == 1:
            await self._conn.execute(
                text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                {"ns": _USER_LOCK_NAMESPACE, "key": keys[0]},
            )
        elif keys:
            await self._conn.execute(_LOCK_USERS, {"ns": _USER_LOCK_NAMESPACE, "keys": keys})

    async def insert_new(
        self, events: Sequence[NewEvent], server_timestamp: datetime
    ) -> list[StoredEvent]:
        """Insert the events whose request id is not stored yet (ON CONFLICT DO NOTHING, safe under
        races); returns the inserted rows in sequence order."""
        if not events:
            return []
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = (
            dialect_insert(raw_events)
            .on_conflict_do_nothing(index_elements=[raw_events.c.request_id])
            .returning(*_COLUMNS)
        )
        rows = [_row(event, server_timestamp) for event in events]
        result = await self._conn.execute(statement, rows)
        stored = [_stored(r) for r in result.all()]
        stored.sort(key=lambda e: e.sequence)
        return stored

    async def find_by_request_ids(self, request_ids: Sequence[UUID]) -> dict[UUID, StoredEvent]:
        if not request_ids:
            return {}
        result = await self._conn.execute(
            select(*_COLUMNS).where(raw_events.c.request_id.in_(request_ids))
        )
        return {row.request_id: _stored(row) for row in result.all()}


def _row(event: NewEvent, server_timestamp: datetime) -> dict[str, Any]:
    return {
        "event_id": uuid4(),
        "request_id": event.request_id,
        "event_type": event.event_type.value,
        "user_id": event.user_id,
        "movie_id": event.movie_id,
        "client_timestamp": event.client_timestamp or server_timestamp,
        "server_timestamp": server_timestamp,
        "metadata": event.metadata,
    }


def _stored(row: Any) -> StoredEvent:
    return StoredEvent.model_construct(
        event_id=row.event_id,
        sequence=row.sequence,
        request_id=row.request_id,
        event_type=EventType(row.event_type),
        user_id=row.user_id,
        movie_id=row.movie_id,
        client_timestamp=row.client_timestamp,
        server_timestamp=row.server_timestamp,
        metadata=row.metadata,
    )
