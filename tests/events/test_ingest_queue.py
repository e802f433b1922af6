"""The single-event queue is bounded: when the database is slower than the callers, requests
past INGEST_QUEUE_MAX get a 503 with Retry-After at once instead of piling up in memory (issue 17,
defect 7)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from interaction_recommender.errors import ServiceUnavailable
from interaction_recommender.events.batcher import IngestBatcher
from interaction_recommender.events.schemas import NewEvent
from interaction_recommender.events.store import IngestOutcome


class _StuckStore:
    """A fault: a database that takes every transaction and never commits it."""

    def __init__(self) -> None:
        self.calls = 0

    async def ingest(self, events: Sequence[NewEvent], *, topic: str) -> list[IngestOutcome]:
        self.calls += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_requests_past_the_queue_limit_get_a_503_at_once() -> None:
    store = _StuckStore()
    batcher = IngestBatcher(
        store,  # type: ignore[arg-type]
        topic="events",
        max_batch=1,
        max_in_flight=1,
        max_pending=10,
    )
    event = object()  # the stuck store never looks at it
    waiting = [asyncio.create_task(batcher.ingest(event)) for _ in range(11)]  # type: ignore[arg-type]
    await asyncio.sleep(0.05)

    with pytest.raises(ServiceUnavailable) as refused:
        await asyncio.wait_for(batcher.ingest(event), 1.0)  # type: ignore[arg-type]

    assert refused.value.headers == {"Retry-After": "1"}
    assert store.calls == 1  # one transaction in flight, ten requests queued behind it
    assert not any(task.done() for task in waiting)
    for task in waiting:
        task.cancel()
