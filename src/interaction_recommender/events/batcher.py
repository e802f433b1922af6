"""Group commit for single-event requests.

Concurrent `POST /events/{type}` requests are coalesced into one ``EventStore.ingest`` call (one
transaction, one statement on Postgres), the way a Kafka producer lingers to fill a batch. Each
request still gets its answer only after the transaction holding its event committed, and a
failed transaction fails every request in it (each client retries with its own request id).
The queue is bounded (``max_pending``, INGEST_QUEUE_MAX): when the database is slower than the
callers, a request past the bound gets a 503 with Retry-After at once instead of memory growing.

No waiting is added: a batch is sent as soon as one of ``max_in_flight`` slots is free, so a
lone request goes out at once, and under load the requests that arrive while the slots are busy
form the next batch. On Postgres this cut the CPU per single event roughly in half, because the
driver, pool and event-loop costs of a round trip are shared (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio

from interaction_recommender.errors import ServiceUnavailable
from interaction_recommender.events.schemas import NewEvent
from interaction_recommender.events.store import EventStore, IngestOutcome

__all__ = ["IngestBatcher"]


class IngestBatcher:
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
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._max_pending = max_pending
        self._pending: list[tuple[NewEvent, asyncio.Future[IngestOutcome]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    async def ingest(self, event: NewEvent) -> IngestOutcome:
        if len(self._pending) >= self._max_pending:
            raise ServiceUnavailable("Too many events are waiting for the database; retry later.")
        future: asyncio.Future[IngestOutcome] = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        self._send_batches()
        # The flush runs in its own task: a caller that goes away does not cancel the others.
        return await asyncio.shield(future)

    def _send_batches(self) -> None:
        while self._pending and len(self._in_flight) < self._max_in_flight:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            task = asyncio.create_task(self._flush(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._send_batches()

    async def _flush(self, batch: list[tuple[NewEvent, asyncio.Future[IngestOutcome]]]) -> None:
        try:
            outcomes = await self._store.ingest([event for event, _ in batch], topic=self._topic)
        except Exception as exc:  # handed to every waiting request, which renders it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
