"""The event store: one ``ingest`` call is one transaction that stores new events and their
outbox messages, then commits; ``accepted`` reaches the client only after that commit.

Two adapters share this logic: Postgres through asyncpg directly (the hot path; SQLAlchemy's
async layer cost ~3x the driver per statement, docs/benchmarks.md) and SQLAlchemy Core for SQLite
(the embedded mode). The same tests run against both.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from interaction_recommender import metrics
from interaction_recommender.errors import ServiceUnavailable
from interaction_recommender.events.messages import StoredEvent
from interaction_recommender.events.schemas import NewEvent
from interaction_recommender.wire import utc_now

__all__ = ["EventStore", "IngestOutcome", "new_event_ids"]


def new_event_ids(count: int) -> list[UUID]:
    """Random (version 4) UUIDs from one read of the OS's random source: ``uuid4()`` per event
    made one system call each, ~10% of a batch's CPU."""
    data = os.urandom(16 * count)
    return [UUID(bytes=data[i : i + 16], version=4) for i in range(0, 16 * count, 16)]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    status: Literal["accepted", "duplicate"]
    event: StoredEvent


class EventStore(ABC):
    async def ingest(self, events: Sequence[NewEvent], *, topic: str) -> list[IngestOutcome]:
        """Store each event once; one outcome per input, in input order. A request id repeated
        in ``events`` is a duplicate of its first occurrence."""
        if not events:
            return []
        first: dict[UUID, NewEvent] = {}
        for event in events:
            first.setdefault(event.request_id, event)
        inserted, existing = await self._store(list(first.values()), topic, utc_now())
        if len(inserted) + len(existing) != len(first):
            # Only if a conflicting row vanished between INSERT and SELECT (an erasure racing a
            # retry). Retrying the request gives a clean answer.
            raise ServiceUnavailable("The event store changed concurrently; retry.")

        outcomes = []
        counts: Counter[tuple[str, str]] = Counter()
        fresh = set(inserted)
        for event in events:
            is_new = event.request_id in fresh
            fresh.discard(event.request_id)  # a repeat inside the batch is a duplicate
            status: Literal["accepted", "duplicate"] = "accepted" if is_new else "duplicate"
            stored = inserted.get(event.request_id) or existing[event.request_id]
            outcomes.append(IngestOutcome(status, stored))
            counts[event.event_type.value, status] += 1
        for (event_type, outcome_status), count in counts.items():
            metrics.EVENTS.labels(event_type, outcome_status).inc(count)
        return outcomes

    @abstractmethod
    async def _store(
        self, events: Sequence[NewEvent], topic: str, now: datetime
    ) -> tuple[dict[UUID, StoredEvent], dict[UUID, StoredEvent]]:
        """In one committed transaction: insert the events whose request id is new, with one
        outbox message each (in sequence order); return (inserted, already stored) by request id."""
