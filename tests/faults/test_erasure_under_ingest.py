"""Erasure under concurrent ingest (issue 17, defect 2): users are erased while the load keeps
sending their events. Every event is acknowledged; none of an erased user's is stored, before or
after the erasure; nothing about them is left in Postgres, Redis, the API, the service's log or
its metric labels (the reconciliation's erased-user checks, plus the log and /metrics here)."""

from __future__ import annotations

import pytest

from tests.faults.load import EventSource, LoadShape, client_for, running_load, wait_until
from tests.faults.platform import Platform
from tests.faults.reconcile import dumps_report, reconcile

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(300)]

# Ingest only: a read of an erased user rightly answers 404, which the load counts as a fault.
SHAPE = LoadShape(writers=8, events_per_s=60.0, readers=0, reads_per_s=1.0)
ERASED = 5


async def test_erasure_under_concurrent_ingest(platform: Platform) -> None:
    server = platform.server(ERASURE_SWEEP_AFTER_S="3")
    server.start()
    source = EventSource(seed=1707, users=20)  # each erased user gets events during the erasure
    erased = source.users[:ERASED]
    async with client_for(server.base_url) as client:
        await server.wait_ready(client)
        async with running_load(client, source, SHAPE) as traffic:
            await traffic.wait_acknowledged(200, timeout=60)
            for user in erased:
                answer = await client.delete(
                    f"/api/v1/users/{user}", headers=platform.admin_headers
                )
                assert answer.status_code == 202, answer.text[:300]

            async def all_done() -> bool:
                for user in erased:
                    status = await client.get(
                        f"/api/v1/users/{user}/erasure", headers=platform.admin_headers
                    )
                    if status.json()["status"] != "done":
                        return False
                return True

            took = await wait_until(all_done, timeout=60, what="every erasure done")
            await traffic.wait_acknowledged(traffic.acknowledged_count + 200, timeout=60)
        report = await reconcile(platform, client, traffic, erased_users=erased)
        metrics = (await client.get("/metrics")).text
    await server.stop()

    after = [rid for rid in traffic.answers if traffic.sent[rid].user_id in erased]
    print(
        f"erasures done in {took:.1f}s; {len(after)} events of erased users acknowledged; "
        f"{traffic.summary()}; {dumps_report(report)}"
    )
    assert len(after) > ERASED * 5  # the erased users kept sending
    log = server.log_path.read_text(errors="replace")
    for user in erased:
        assert user not in metrics, "a metric label names an erased user"
        assert user not in log, "the service's log names an erased user"
