"""Idempotent ingestion: raw events and their outbox messages in the caller's transaction.

The caller (the request) owns the transaction and commits it; ``accepted`` reaches the client
only after that commit. A request id already stored answers ``duplicate`` with the stored ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender import metrics
from interaction_recommender.errors import ServiceUnavailable
from interaction_recommender.events.messages import StoredEvent
from interaction_recommender.events.repository import EventRepository
from interaction_recommender.events.schemas import NewEvent
from interaction_recommender.outbox.repository import OutboxRepository
from interaction_recommender.wire import utc_now

__all__ = ["IngestOutcome", "ingest"]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    status: Literal["accepted", "duplicate"]
    event: StoredEvent


async def ingest(
    conn: AsyncConnection, events: Sequence[NewEvent], *, topic: str
) -> list[IngestOutcome]:
    """Store each event once; one outcome per input, in input order. A request id repeated in
    ``events`` is a duplicate of its first occurrence."""
    first: dict[UUID, NewEvent] = {}
    for event in events:
        first.setdefault(event.request_id, event)
    unique = list(first.values())

    repo = EventRepository(conn)
    await repo.lock_users(e.user_id for e in unique)
    inserted = await repo.insert_new(unique, utc_now())
    await OutboxRepository(conn).add([e.to_message(topic) for e in inserted], utc_now())

    stored = {e.request_id: e for e in inserted}
    missing = [rid for rid in first if rid not in stored]
    found = await repo.find_by_request_ids(missing)
    if len(found) != len(missing):
        # Only possible if a conflicting row vanished between INSERT and SELECT (an erasure
        # racing a retry). Retrying the request gives a clean answer.
        raise ServiceUnavailable("The event store changed concurrently; retry.")

    outcomes = []
    new_ids = {e.request_id for e in inserted}
    for event in events:
        fresh = event.request_id in new_ids
        new_ids.discard(event.request_id)  # a repeat inside the batch is a duplicate
        status: Literal["accepted", "duplicate"] = "accepted" if fresh else "duplicate"
        outcomes.append(
            IngestOutcome(status, stored.get(event.request_id) or found[event.request_id])
        )
        metrics.EVENTS.labels(event.event_type.value, status).inc()
    return outcomes
