"""All SQL on stored events for later stages (feature refresh, training, erasure, the popularity
fallback). Ingest writes through the event store (store.py and its adapters)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.events.messages import SCHEMA_VERSION, EventMessage
from interaction_recommender.events.store_postgres import USER_LOCK_NAMESPACE, lock_key
from interaction_recommender.storage.tables import raw_events

__all__ = [
    "all_event_messages",
    "any_event_stored",
    "delete_user_events",
    "event_messages_after",
    "lock_user_ingest",
    "recent_movie_counts",
    "user_event_messages",
    "user_has_events",
    "user_max_sequence",
]


async def user_has_events(conn: AsyncConnection, user_id: UUID) -> bool:
    query = select(exists().where(raw_events.c.user_id == user_id))
    return bool((await conn.execute(query)).scalar())


async def user_max_sequence(conn: AsyncConnection, user_id: UUID) -> int | None:
    query = select(func.max(raw_events.c.sequence)).where(raw_events.c.user_id == user_id)
    value = (await conn.execute(query)).scalar()
    return int(value) if value is not None else None


async def user_event_messages(
    conn: AsyncConnection, user_id: UUID, *, since: datetime | None = None
) -> list[EventMessage]:
    """The user's stored events (those stored since ``since``), in sequence order, as the
    messages the consumer would have received."""
    query = select(raw_events).where(raw_events.c.user_id == user_id)
    if since is not None:
        query = query.where(raw_events.c.server_timestamp >= since)
    rows = (await conn.execute(query.order_by(raw_events.c.sequence))).all()
    return [_message(row) for row in rows]


async def all_event_messages(conn: AsyncConnection) -> list[EventMessage]:
    """Every stored event (training), in sequence order, without re-validating stored rows."""
    result = await conn.stream(select(raw_events).order_by(raw_events.c.sequence))
    return [_message(row) async for row in result]


async def event_messages_after(conn: AsyncConnection, after: int, limit: int) -> list[EventMessage]:
    """Up to ``limit`` stored events with a sequence above ``after``, in sequence order (one
    page of a read that must not hold a connection for long)."""
    query = (
        select(raw_events)
        .where(raw_events.c.sequence > after)
        .order_by(raw_events.c.sequence)
        .limit(limit)
    )
    return [_message(row) for row in (await conn.execute(query)).all()]


async def any_event_stored(conn: AsyncConnection) -> bool:
    return bool((await conn.execute(select(exists().select_from(raw_events)))).scalar())


def _message(row: Any) -> EventMessage:
    """A stored row as its message (validated at ingest; not validated again)."""
    return EventMessage.model_construct(
        schema_version=SCHEMA_VERSION,
        event_id=row.event_id,
        sequence=row.sequence,
        request_id=row.request_id,
        event_type=row.event_type,
        user_id=row.user_id,
        movie_id=row.movie_id,
        client_timestamp=row.client_timestamp,
        server_timestamp=row.server_timestamp,
        metadata=row.metadata,
    )


async def recent_movie_counts(conn: AsyncConnection, since: datetime) -> dict[UUID, int]:
    """Distinct users per movie among events stored since ``since`` (the popularity fallback)."""
    query = (
        select(raw_events.c.movie_id, func.count(func.distinct(raw_events.c.user_id)))
        .where(raw_events.c.server_timestamp >= since, raw_events.c.movie_id.is_not(None))
        .group_by(raw_events.c.movie_id)
    )
    return {row[0]: int(row[1]) for row in (await conn.execute(query)).all()}


async def delete_user_events(conn: AsyncConnection, user_id: UUID) -> int:
    result = await conn.execute(delete(raw_events).where(raw_events.c.user_id == user_id))
    return int(result.rowcount or 0)


async def lock_user_ingest(conn: AsyncConnection, user_id: UUID) -> None:
    """Wait for the user's ingest in flight and hold new ones until this transaction ends: the
    lock ingest takes in its statement (store_postgres.py). SQLite has one writer anyway."""
    if conn.dialect.name != "postgresql":
        return
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(:ns, :key)"),
        {"ns": USER_LOCK_NAMESPACE, "key": lock_key(user_id)},
    )
