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
        now = utc_now()
        inserted, existing = await self._store(list(first.values()), topic, now)
        dropped = await self._dropped(
            [e for r, e in first.items() if r not in inserted and r not in existing], now
        )

        outcomes = []
        counts: Counter[tuple[str, str]] = Counter()
        fresh = set(inserted) | set(dropped)
        for event in events:
            is_new = event.request_id in fresh
            fresh.discard(event.request_id)  # a repeat inside the batch is a duplicate
            status: Literal["accepted", "duplicate"] = "accepted" if is_new else "duplicate"
            stored = (
                inserted.get(event.request_id)
                or existing.get(event.request_id)
                or dropped[event.request_id]
            )
            outcomes.append(IngestOutcome(status, stored))
            if event.request_id not in dropped:
                counts[event.event_type.value, status] += 1
        for (event_type, outcome_status), count in counts.items():
            metrics.EVENTS.labels(event_type, outcome_status).inc(count)
        return outcomes

    async def _dropped(self, missing: list[NewEvent], now: datetime) -> dict[UUID, StoredEvent]:
        """Events neither stored nor found: their users were erased (the store skips them), so
        they are answered as usual and never stored (docs/features.md, erasure)."""
        if not missing:
            return {}
        erased = await self._erased({e.user_id for e in missing})
        if any(e.user_id not in erased for e in missing):
            # A conflicting row vanished between INSERT and SELECT without an erasure: cannot
            # happen, but a retry gives a clean answer if it does.
            raise ServiceUnavailable("The event store changed concurrently; retry.")
        metrics.ERASED_USER_WRITES_DROPPED.labels("event").inc(len(missing))
        return {
            e.request_id: StoredEvent(
                sequence=0,
                event_id=event_id,
                request_id=e.request_id,
                event_type=e.event_type.value,
                user_id=e.user_id,
                movie_id=e.movie_id,
                client_timestamp=e.client_timestamp or now,
                server_timestamp=now,
                metadata={},
            )
            for e, event_id in zip(missing, new_event_ids(len(missing)), strict=True)
        }

    @abstractmethod
    async def _erased(self, user_ids: set[UUID]) -> set[UUID]:
        """Those of ``user_ids`` that were erased."""

    @abstractmethod
    async def _store(
        self, events: Sequence[NewEvent], topic: str, now: datetime
    ) -> tuple[dict[UUID, StoredEvent], dict[UUID, StoredEvent]]:
        """In one committed transaction: insert the events whose request id is new and whose user
        was not erased, with one outbox message each (in sequence order); return (inserted,
        already stored) by request id."""
