"""Foreign messages on `interaction_events` under load (issue 17, defect 5): a forged sequence for
a real user, an event with naive timestamps and a body that is not JSON at all. None changes any
state: each goes to the dead letters once, named with the consumer group that could not read it
(the feature consumer; attribution and placeholders skip what they cannot read), no consumer
stalls, and the user's features still equal a rebuild from the stored events."""

from __future__ import annotations

import uuid

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.faults.load import EventSource, LoadShape, client_for, running_load, wait_until
from tests.faults.platform import Platform
from tests.faults.reconcile import dumps_report, reconcile

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.kafka, pytest.mark.timeout(300)]

SHAPE = LoadShape(writers=4, events_per_s=40.0, readers=2, reads_per_s=10.0)


def _foreign(user: str) -> list[bytes]:
    naive = {
        "schemaVersion": 1,
        "eventId": str(uuid.uuid4()),
        "sequence": 1,
        "requestId": str(uuid.uuid4()),
        "eventType": "rating",
        "userId": str(uuid.uuid4()),  # a user of its own: its sequence 1 says nothing of others
        "movieId": str(uuid.uuid4()),
        "clientTimestamp": "2026-12-08T10:00:00",
        "serverTimestamp": "2026-12-08T10:00:00",
        "metadata": {"rating": 4.0},
    }
    forged = {"schemaVersion": 9, "userId": user, "sequence": 9 * 10**18}
    return [orjson.dumps(forged), orjson.dumps(naive), b"\xff not json"]


async def test_foreign_messages_change_nothing_and_stall_nobody(platform: Platform) -> None:
    server = platform.server()
    server.start()
    source = EventSource(seed=1706, users=40)
    victim = source.users[0]
    async with client_for(server.base_url) as client:
        await server.wait_ready(client)
        async with running_load(client, source, SHAPE) as traffic:
            await traffic.wait_acknowledged(200, timeout=60)
            producer = AIOKafkaProducer(bootstrap_servers=platform.kafka.bootstrap)
            await producer.start()
            try:
                for value in _foreign(victim):
                    await producer.send_and_wait(
                        platform.topics.interaction_events, value, key=victim.encode()
                    )
            finally:
                await producer.stop()

            async def dead_lettered() -> bool:
                listing = await client.get("/api/v1/admin/dlq", headers=platform.admin_headers)
                return bool(listing.json()["pendingCount"] >= 3)

            await wait_until(dead_lettered, timeout=60, what="the foreign messages dead-lettered")
            await traffic.wait_acknowledged(traffic.acknowledged_count + 200, timeout=60)
        report = await reconcile(platform, client, traffic, foreign_dead_letters=3)
        listing = (await client.get("/api/v1/admin/dlq", headers=platform.admin_headers)).json()

    print(f"{traffic.summary()}; {dumps_report(report)}")
    groups = {letter["consumer"] for letter in listing["deadLetters"]}
    assert groups == {platform.settings().features_consumer_group}
    assert victim in traffic.acknowledged_users()  # the victim's real events were checked
