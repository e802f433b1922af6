"""Redis SIGKILLed while the service serves recommendations and ingests events, then started
again empty (no persistence: every online copy is lost, as with an evicting or replaced cache).

Ingest does not need Redis and goes on; reads answer from the snapshot or from memory (200), or
503 with Retry-After, never 500; the feature consumer keeps committing snapshots and retries its
Redis writes; afterwards every user's online copy is the snapshot's (repaired by a read where
Redis lost it), and the reconciliation holds."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.faults.load import (
    EventSource,
    LoadShape,
    client_for,
    metric_total,
    running_load,
    wait_until,
)
from tests.faults.platform import Platform
from tests.faults.reconcile import dumps_report, reconcile

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(300)]

WARM_UP_EVENTS = 300
DOWN_EVENTS = 300  # acknowledged while Redis is down
DOWN_READS = 60  # recommendations and features answered while Redis is down
AFTER_EVENTS = 300
SHAPE = LoadShape(writers=8, events_per_s=60.0, readers=4, reads_per_s=30.0)


async def test_redis_killed_while_serving_and_ingesting(platform: Platform) -> None:
    server = platform.server()
    server.start()
    async with client_for(server.base_url) as client:
        await server.wait_ready(client)
        async with running_load(client, EventSource(seed=1702), SHAPE) as traffic:
            await traffic.wait_acknowledged(WARM_UP_EVENTS, timeout=60)
            failures_before = await metric_total(client, "online_feature_store_failures_total")

            platform.redis.kill()
            killed_at = time.monotonic()
            await traffic.wait_acknowledged(traffic.acknowledged_count + DOWN_EVENTS, timeout=60)
            await wait_until(
                lambda: (
                    sum(
                        r.status is not None
                        for kind in ("recommend", "features")
                        for r in traffic.replies_between(kind, killed_at, time.monotonic())
                    )
                    >= DOWN_READS
                ),
                timeout=60,
                what=f"{DOWN_READS} reads answered while Redis is down",
            )
            failures_during = await metric_total(client, "online_feature_store_failures_total")
            platform.redis.start()
            restarted_at = time.monotonic()

            await traffic.wait_acknowledged(traffic.acknowledged_count + AFTER_EVENTS, timeout=60)
        report = await reconcile(platform, client, traffic)

    reads = [
        r
        for kind in ("recommend", "features")
        for r in traffic.replies_between(kind, killed_at, restarted_at)
    ]
    print(
        f"Redis down {restarted_at - killed_at:.1f}s; acknowledged meanwhile: "
        f"{traffic.acknowledged_between(killed_at, restarted_at)}; reads meanwhile by status: "
        f"{dict(Counter((r.kind, r.status) for r in reads))}; "
        f"Redis write failures: {failures_before} -> {failures_during}; {traffic.summary()}; "
        f"{dumps_report(report)}"
    )
    # The kill reached the feature consumer (its Redis writes failed and were retried later),
    # and serving went on: most reads answered 200 while Redis was down.
    assert failures_during > failures_before
    assert sum(r.status == 200 for r in reads) >= len(reads) / 2, traffic.summary()
