"""Postgres stopped under load, kept down a few seconds, and started again on the same port: as
by a crash (`pg_ctl stop -m immediate`: sessions cut, no checkpoint, crash recovery at the start)
and as by an operator (`-m fast`: every session ends with "terminating connection due to
administrator command", a checkpoint, a clean start).

While it is down, ingest answers 503 with Retry-After (never 500) and the callers retry; the
service reconnects by itself (pooled connections died with the server); no acknowledged event
is lost or stored twice, and the relay and consumers resume, so the reconciliation holds."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from tests.faults.load import EventSource, LoadShape, client_for, running_load, wait_until
from tests.faults.platform import Platform
from tests.faults.reconcile import dumps_report, reconcile

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(300)]

WARM_UP_EVENTS = 300
DOWN_S = 5.0  # the outage: long enough for every pool, the relay and the consumers to notice
REFUSED_WHILE_DOWN = 20  # ingest replies that must have come while down
AFTER_EVENTS = 300
SHAPE = LoadShape(writers=8, events_per_s=60.0, readers=2, reads_per_s=10.0)


@pytest.mark.parametrize("mode", ["immediate", "fast"])
async def test_postgres_restarted_under_load(platform: Platform, mode: str) -> None:
    server = platform.server()
    server.start()
    async with client_for(server.base_url) as client:
        await server.wait_ready(client)
        async with running_load(client, EventSource(seed=1703), SHAPE) as traffic:
            await traffic.wait_acknowledged(WARM_UP_EVENTS, timeout=60)

            platform.postgres.stop(mode)
            stopped_at = time.monotonic()
            await asyncio.sleep(DOWN_S)  # the outage is the scenario: it lasts DOWN_S
            await wait_until(
                lambda: (
                    len(traffic.replies_between("ingest", stopped_at, time.monotonic()))
                    >= REFUSED_WHILE_DOWN
                ),
                timeout=30,
                what=f"{REFUSED_WHILE_DOWN} ingest replies while Postgres is down",
            )
            platform.postgres.start()
            started_at = time.monotonic()

            await traffic.wait_acknowledged(traffic.acknowledged_count + AFTER_EVENTS, timeout=90)
        report = await reconcile(platform, client, traffic)

    down = traffic.replies_between("ingest", stopped_at, started_at)
    outcomes = Counter(r.status or r.error for r in down)
    after = Counter(
        (r.kind, r.status or r.error)
        for r in traffic.replies
        if r.at >= started_at and r.status != 200
    )
    print(
        f"Postgres down {started_at - stopped_at:.1f}s; ingest replies meanwhile: "
        f"{dict(outcomes)}; other than 200 after the restart: {dict(after)}; "
        f"{traffic.summary()}; {dumps_report(report)}"
    )
    # The outage was seen by the callers as what it is: 503 with Retry-After (traffic.check
    # refuses any other 5xx and any 503 without the header), not as hanging requests.
    assert outcomes[503] >= REFUSED_WHILE_DOWN / 2, outcomes
