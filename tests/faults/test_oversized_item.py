"""An oversized item under load (issue 17, defect 1).

Ingest refuses an item whose message could not be published: a batch item is `rejected` alone, a
single event answers 413, and the load goes on. A row the bus refuses anyway (stored while the
producer's limit was higher, as by an older version or before the limit was lowered) is set aside
by the relay: kept, listed by GET /admin/dlq, never on the topic, and every row behind it flows.

Phase 1: a `serve` whose KAFKA_MAX_REQUEST_SIZE is 4 MiB and whose broker address answers nothing
(so nothing is published) accepts a 1.5 MB search. Phase 2: a `serve` with the default 1 MiB on
the real broker takes over under load; its relay meets that row first.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.faults.load import Answer, Event, EventSource, LoadShape, client_for, running_load
from tests.faults.platform import Platform
from tests.faults.reconcile import dumps_report, reconcile
from tests.fixtures.factories import event_payload
from tests.fixtures.services import free_port

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(300)]

BIG_FILTER_KEY = 1_500_000  # over the default producer limit (1 MiB), under 4 MiB's ingest limit
SHAPE = LoadShape(writers=4, events_per_s=40.0, readers=2, reads_per_s=10.0)


def _big_search() -> Event:
    body = event_payload(
        "search",
        user_id=str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        metadata={"query": "x", "filters": {"k" * BIG_FILTER_KEY: 1}},
    )
    return Event("search", body)


async def test_an_oversized_item_is_refused_or_set_aside_and_blocks_nothing(
    platform: Platform,
) -> None:
    big = _big_search()
    first = platform.server(
        KAFKA_MAX_REQUEST_SIZE=str(4 * 1024 * 1024),
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",  # nothing is ever published
    )
    first.start()
    async with client_for(first.base_url) as client:
        await first.wait_ready(client)
        stored = await client.post("/api/v1/events/batch", json={"events": [_typed(big)]})
    await first.stop()
    assert stored.status_code == 200, stored.text[:300]
    (result,) = stored.json()["results"]
    assert result["status"] == "accepted", result

    second = platform.server()
    second.start()
    async with client_for(second.base_url) as client:
        await second.wait_ready(client)
        async with running_load(client, EventSource(seed=1705), SHAPE) as traffic:
            await traffic.wait_acknowledged(200, timeout=60)
            refused, beside = _big_search(), EventSource(seed=1).next()
            batch = await client.post(
                "/api/v1/events/batch", json={"events": [_typed(refused), _typed(beside)]}
            )
            single = await client.post(refused.path, json=refused.body)
            await traffic.wait_acknowledged(traffic.acknowledged_count + 200, timeout=60)
        # The big event was acknowledged in phase 1: the reconciliation accounts for it.
        traffic.sent[big.request_id] = big
        traffic.answers[big.request_id] = Answer(1, "accepted", result["eventId"], time.monotonic())
        # So was the item beside the refused one in the batch.
        kept = batch.json()["results"][1]
        traffic.sent[beside.request_id] = beside
        traffic.answers[beside.request_id] = Answer(
            1, kept["status"], kept["eventId"], time.monotonic()
        )
        report = await reconcile(platform, client, traffic, set_aside=[big.request_id])

    print(f"{traffic.summary()}; {dumps_report(report)}")
    assert batch.status_code == 200, batch.text[:300]
    statuses = [r["status"] for r in batch.json()["results"]]
    assert statuses == ["rejected", "accepted"], batch.json()
    assert single.status_code == 413, single.text[:300]


def _typed(event: Event) -> dict[str, object]:
    return {**event.body, "type": event.event_type}
