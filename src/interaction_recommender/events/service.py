"""Ingest as the routes use it: a single event joins the group commit (batcher.py), a batch is
one transaction of its own. Either way the answer comes after the commit, and the outbox wakes
the relay (outbox/repository.py: OUTBOX_CHANNEL)."""

from __future__ import annotations

from collections.abc import Sequence

from interaction_recommender.events.batcher import IngestBatcher
from interaction_recommender.events.schemas import NewEvent
from interaction_recommender.events.store import EventStore, IngestOutcome

__all__ = ["EventIngest"]


class EventIngest:
    def __init__(
        self,
        store: EventStore,
        *,
        topic: str,
        max_batch: int,
        max_in_flight: int,
        max_pending: int,
    ) -> None:
        self._store = store
        self._topic = topic
        self._single = IngestBatcher(
            store,
            topic=topic,
            max_batch=max_batch,
            max_in_flight=max_in_flight,
            max_pending=max_pending,
        )

    async def one(self, event: NewEvent) -> IngestOutcome:
        return await self._single.ingest(event)

    async def many(self, events: Sequence[NewEvent]) -> list[IngestOutcome]:
        return await self._store.ingest(events, topic=self._topic)
