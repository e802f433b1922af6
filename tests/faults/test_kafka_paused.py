"""The broker paused for 60 s under load (SIGSTOP: connections stay open and nothing answers, the
worst kind of outage for a client; SIGCONT keeps its data, a restart would not).

Ingest must not depend on Kafka: events keep being acknowledged during the pause (they wait in
the outbox), no request fails, and afterwards the relay publishes the backlog and the consumers
catch up, so the reconciliation holds.

Known defect (in about a third of the runs, timing-dependent; see KNOWN_DEFECT): the topic then
holds a user's event behind a later one, and the reconciliation's order check fails. The test
reports that one failure as an expected failure (xfail) and fails for anything else.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.load import EventSource, LoadShape, client_for, running_load
from tests.faults.platform import Platform
from tests.faults.reconcile import OrderViolation, dumps_report, outbox_backlog, reconcile

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(420)]

PAUSE_S = 60.0
WARM_UP_EVENTS = 300
AFTER_EVENTS = 300
SHAPE = LoadShape(writers=8, events_per_s=40.0, readers=2, reads_per_s=10.0)
KNOWN_DEFECT = (
    "a publish abandoned during the pause is delivered in part, and not as a prefix: "
    "KafkaBus.publish (src/interaction_recommender/bus/kafka.py) gives up after its "
    "asyncio.timeout but leaves the messages it handed to aiokafka in the producer, which "
    "can fail an expired batch of a partition and still deliver a later batch of the same "
    "partition when the broker is back; a user's later event then precedes an earlier one on "
    "interaction_events, and the feature consumer skips the earlier one as a repeat (its "
    "effect is lost until a refresh)"
)


async def test_kafka_paused_for_60_s_under_load(platform: Platform) -> None:
    server = platform.server()
    server.start()
    async with client_for(server.base_url) as client:
        await server.wait_ready(client)
        async with running_load(client, EventSource(seed=1701, users=50), SHAPE) as traffic:
            await traffic.wait_acknowledged(WARM_UP_EVENTS, timeout=60)
            with platform.kafka.paused():
                paused_at = time.monotonic()
                await asyncio.sleep(PAUSE_S)  # the outage is the scenario: it lasts 60 s
                backlog_at_resume = await outbox_backlog(platform.postgres.dsn)
                resumed_at = time.monotonic()
            await traffic.wait_acknowledged(traffic.acknowledged_count + AFTER_EVENTS, timeout=60)

        during = traffic.acknowledged_between(paused_at, resumed_at)
        print(
            f"paused {resumed_at - paused_at:.1f}s; acknowledged during the pause: {during}; "
            f"outbox backlog at resume: {backlog_at_resume}; {traffic.summary()}"
        )
        # Ingest went on without the broker (at a quarter of the offered rate at least), and the
        # relay really could not publish: the backlog held the events of the pause.
        assert during >= SHAPE.events_per_s * PAUSE_S / 4, traffic.summary()
        assert backlog_at_resume >= 0.9 * during, (backlog_at_resume, during)
        served = traffic.replies_between("recommend", paused_at, resumed_at)
        assert any(r.status == 200 for r in served), "no recommendation answered during the pause"

        try:
            report = await reconcile(platform, client, traffic)
        except OrderViolation as exc:
            pytest.xfail(f"known defect: {KNOWN_DEFECT}. Seen: {exc}")
        print(dumps_report(report))
