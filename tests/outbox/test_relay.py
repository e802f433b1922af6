"""The relay: order, flush on shutdown, retention, one active relay across replicas."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import func, select

from interaction_recommender import metrics
from interaction_recommender.bus.memory import MemoryBus
from interaction_recommender.outbox import OutboxMessage, OutboxRelay, OutboxRepository
from interaction_recommender.storage import Database, migrate
from interaction_recommender.storage.tables import outbox
from tests.fixtures.app import embedded_settings, platform_settings, run_service
from tests.fixtures.bus import read_topic
from tests.fixtures.factories import event_payload, new_id
from tests.fixtures.services import KafkaBroker
from tests.fixtures.serving import eventually


async def _database(tmp_path: Path) -> Database:
    database = Database(embedded_settings(tmp_path))
    await migrate(database)
    return database


def _relay(database: Database, bus: MemoryBus) -> OutboxRelay:
    return OutboxRelay(
        database,
        bus,
        batch_size=7,
        idle_poll_s=10,
        linger_s=0,
        max_backoff_s=1,
        retention_s=3600,
    )


async def test_stop_flushes_pending_rows_in_order(tmp_path: Path) -> None:
    database = await _database(tmp_path)
    bus = MemoryBus()
    try:
        async with database.transaction() as conn:
            await OutboxRepository(conn).add(
                [OutboxMessage("t", "k", orjson.dumps({"n": n})) for n in range(20)],
                datetime.now(UTC),
            )
        relay = _relay(database, bus)  # never started: only the shutdown flush publishes
        await relay.stop(flush_timeout_s=10)

        _, published = bus.read("t", 0)
        assert [orjson.loads(m.value)["n"] for m in published] == list(range(20))
        async with database.transaction() as conn:
            backlog, oldest = await OutboxRepository(conn).backlog()
        assert (backlog, oldest) == (0, None)
    finally:
        await database.dispose()


async def test_sent_rows_are_deleted_after_retention_only(tmp_path: Path) -> None:
    database = await _database(tmp_path)
    now = datetime.now(UTC)
    try:
        async with database.transaction() as conn:
            repo = OutboxRepository(conn)
            await repo.add([OutboxMessage("t", None, b"{}") for _ in range(3)], now)
            ids = [m.id for m in await repo.claim_batch(10)]
            await repo.mark_sent(ids[:2], now - timedelta(hours=2))
            deleted = await repo.delete_sent_before(now - timedelta(hours=1), limit=100)
            remaining = (await conn.execute(select(func.count()).select_from(outbox))).scalar()
        assert deleted == 2
        assert remaining == 1  # the unsent row is never deleted
    finally:
        await database.dispose()


async def test_two_replicas_publish_one_users_events_in_commit_order(
    tmp_path: Path, pg_schema: str, redis_url: str, kafka_broker: KafkaBroker
) -> None:
    """Two processes' worth of apps on one database: events for one user posted to both at
    once reach the topic once each, in strictly increasing sequence order."""
    settings = platform_settings(tmp_path, pg_schema, redis_url, kafka_broker)
    user = new_id()
    async with run_service(settings) as one, run_service(settings) as two:

        async def post(service_index: int) -> None:
            client = (one, two)[service_index % 2].client
            body = event_payload("watch", user_id=user)
            assert (await client.post("/api/v1/events/watch", json=body)).status_code == 200

        await asyncio.gather(*(post(i) for i in range(120)))
        messages = await read_topic(
            one.runtime,
            one.runtime.topics.interaction_events,
            until=lambda ms: sum(m["userId"] == user for m in ms) >= 120,
        )
    sequences = [m["sequence"] for m in messages if m["userId"] == user]
    assert len(sequences) == 120
    assert sequences == sorted(set(sequences))


class _DownBus(MemoryBus):
    """A fault: a broker that refuses every publish."""

    async def publish(self, messages: object) -> None:
        raise ConnectionError("the broker is down")


async def test_the_backlog_gauges_keep_moving_while_the_broker_is_down(tmp_path: Path) -> None:
    """Alerts on the outbox backlog rely on the gauges: they must not freeze during an outage
    (issue 17, defect 7)."""
    database = await _database(tmp_path)
    relay = _relay(database, _DownBus())
    try:
        relay.start()
        await asyncio.sleep(0.3)  # the first publish has failed: the relay is retrying
        async with database.transaction() as conn:
            await OutboxRepository(conn).add(
                [OutboxMessage("t", "k", b"{}") for _ in range(25)], datetime.now(UTC)
            )

        async def gauge_shows_the_backlog() -> bool:
            return metrics.OUTBOX_BACKLOG._value.get() == 25

        await eventually(gauge_shows_the_backlog, timeout=10)
        assert metrics.OUTBOX_OLDEST_AGE._value.get() >= 0.0
    finally:
        await relay.stop(flush_timeout_s=0.1)
        await database.dispose()
