"""Event store on SQLAlchemy Core, for SQLite (the embedded mode).

SQLite has one writer at a time, so transactions commit in the order they draw sequence numbers:
per-user commit order needs no lock here (compare store_postgres.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from interaction_recommender.events.messages import StoredEvent
from interaction_recommender.events.schemas import NewEvent
from interaction_recommender.events.store import EventStore, new_event_ids
from interaction_recommender.outbox.repository import OutboxRepository
from interaction_recommender.storage.database import Database
from interaction_recommender.storage.erased import erased_among
from interaction_recommender.storage.tables import raw_events

__all__ = ["SqlEventStore"]

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


class SqlEventStore(EventStore):
    def __init__(self, database: Database) -> None:
        self._database = database

    async def _erased(self, user_ids: set[UUID]) -> set[UUID]:
        async with self._database.transaction() as conn:
            return await erased_among(conn, user_ids)

    async def _store(
        self, events: Sequence[NewEvent], topic: str, now: datetime
    ) -> tuple[dict[UUID, StoredEvent], dict[UUID, StoredEvent]]:
        async with self._database.transaction() as conn:
            erased = await erased_among(conn, {e.user_id for e in events})
            events = [e for e in events if e.user_id not in erased]  # answered, never stored
            if not events:
                return {}, {}
            statement = (
                sqlite.insert(raw_events)
                .on_conflict_do_nothing(index_elements=[raw_events.c.request_id])
                .returning(*_COLUMNS)
            )
            ids = new_event_ids(len(events))
            rows = [_row(e, event_id, now) for e, event_id in zip(events, ids, strict=True)]
            result = await conn.execute(statement, rows)
            inserted = sorted(
                (StoredEvent.from_row(r) for r in result.all()), key=lambda e: e.sequence
            )
            await OutboxRepository(conn).add([e.to_message(topic) for e in inserted], now)

            new_ids = {e.request_id for e in inserted}
            missing = [e.request_id for e in events if e.request_id not in new_ids]
            existing: dict[UUID, StoredEvent] = {}
            if missing:
                found = await conn.execute(
                    select(*_COLUMNS).where(raw_events.c.request_id.in_(missing))
                )
                existing = {row.request_id: StoredEvent.from_row(row) for row in found.all()}
        return {e.request_id: e for e in inserted}, existing


def _row(event: NewEvent, event_id: UUID, server_timestamp: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "request_id": event.request_id,
        "event_type": event.event_type.value,
        "user_id": event.user_id,
        "movie_id": event.movie_id,
        "client_timestamp": event.client_timestamp or server_timestamp,
        "server_timestamp": server_timestamp,
        "metadata": event.metadata,
    }
