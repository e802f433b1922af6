"""Ingest as the routes use it: a single event joins the group commit (batcher.py), a batch is
one transaction of its own. Either way the answer comes after the commit, and the outbox wakes
the relay (outbox/repository.py: OUTBOX_CHANNEL)."""

from __future__ import annotations

from collections.abc import Sequence

from interaction_recommender.errors import PayloadTooLarge
from interaction_recommender.events.batcher import IngestBatcher
from interaction_recommender.events.messages import message_size_bound
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
        max_message_bytes: int,
    ) -> None:
        self._store = store
        self._topic = topic
        self._max_message_bytes = max_message_bytes
        self._single = IngestBatcher(
            store,
            topic=topic,
            max_batch=max_batch,
            max_in_flight=max_in_flight,
            max_pending=max_pending,
        )

    def message_bound(self, event: NewEvent) -> int:
        return message_size_bound(event.metadata)

    def check_size(self, event: NewEvent) -> None:
        """Refuse an event whose message could not be published (or dead-lettered): one such
        row at the head of the outbox used to stop every topic (docs/topics.md, sizes)."""
        size = self.message_bound(event)
        if size > self._max_message_bytes:
            raise PayloadTooLarge(
                f"The event's message would take up to {size} bytes; the limit is "
                f"{self._max_message_bytes} bytes (derived from KAFKA_MAX_REQUEST_SIZE)."
            )

    async def one(self, event: NewEvent) -> IngestOutcome:
        self.check_size(event)
        return await self._single.ingest(event)

    async def many(self, events: Sequence[NewEvent]) -> list[IngestOutcome]:
        """Events already checked one by one (``check_size``): a batch rejects items alone."""
        return await self._store.ingest(events, topic=self._topic)
