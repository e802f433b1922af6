"""A Redis that refuses connections never makes the feature routes answer 500: reads fall back
to the snapshot in Postgres, writes that need Redis answer 503 with Retry-After (issue 17,
defect 6)."""

from __future__ import annotations

import uuid

import orjson
import pytest
from sqlalchemy import select

from interaction_recommender.bus.base import Record
from interaction_recommender.runtime import Runtime
from interaction_recommender.settings import Settings
from interaction_recommender.storage.tables import raw_events
from tests.fixtures.app import feature_consumer, run_service
from tests.fixtures.contract import assert_error_shape
from tests.fixtures.factories import new_id
from tests.fixtures.services import free_port
from tests.fixtures.serving import ADMIN, watch


@pytest.mark.parametrize("mode", ["platform"], indirect=True)
async def test_feature_routes_answer_from_the_snapshot_or_503_when_redis_is_down(
    settings: Settings,
) -> None:
    down = settings.model_copy(
        update={
            "redis_url": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "admin_token": ADMIN,
            "health_probe_timeout_s": 0.5,
        }
    )
    async with run_service(down) as service:
        user = new_id()
        await watch(service, user, uuid.uuid4())  # stored in Postgres

        read = await service.client.get(f"/api/v1/features/{user}")
        refresh = await service.client.post(f"/api/v1/features/{user}/refresh")
        erase = await service.client.delete(
            f"/api/v1/users/{user}", headers={"Authorization": f"Bearer {ADMIN}"}
        )

    assert read.status_code == 200, read.text  # the snapshot's (here: nothing processed yet)
    assert read.json()["userId"] == user
    assert refresh.status_code == 503, refresh.text
    assert refresh.headers["Retry-After"] == "1"
    assert_error_shape(refresh.json())
    # Erasure is a job: durable at once, its Redis step retried until Redis answers.
    assert erase.status_code == 202, erase.text
    steps = {step["name"]: step for step in erase.json()["steps"]}
    assert steps["database"]["status"] == "done"
    assert steps["online_features"]["status"] == "pending"
    assert steps["online_features"]["lastError"]


async def test_a_failed_redis_write_is_repaired_by_the_next_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer committed its batch (snapshot written, offsets moved on) but Redis refused
    the write, then the process died: the next consumer process puts the features in Redis."""
    runtime_settings = settings.model_copy(update={"enable_consumers": False})
    async with run_service(runtime_settings) as service:
        runtime = service.runtime
        user = uuid.UUID(new_id())
        await watch(service, str(user), uuid.uuid4())
        store = runtime.feature_store

        async def refused(*args: object, **kwargs: object) -> None:
            raise ConnectionError("redis is down")

        first = feature_consumer(runtime)
        monkeypatch.setattr(store, "put_many", refused)
        records = await _all_events(runtime)
        await first.handle(records)  # returns: the batch is committed, Redis is behind
        monkeypatch.undo()
        assert user not in await store.get_many([user])
        del first  # the process dies with whatever it kept in memory

        restarted = feature_consumer(runtime)
        await restarted.handle([])  # its first poll found nothing new
        repaired = await store.get_many([user])

    assert repaired[user].total_interactions == 1


async def _all_events(runtime: Runtime) -> list[Record]:
    """Every stored event as the relay would have published it (docs/topics.md)."""
    async with runtime.database.transaction() as conn:
        rows = (await conn.execute(select(raw_events).order_by(raw_events.c.sequence))).all()
    topic = runtime.topics.interaction_events
    records = []
    for offset, row in enumerate(rows):
        body = {
            "schemaVersion": 1,
            "eventId": str(row.event_id),
            "sequence": row.sequence,
            "requestId": str(row.request_id),
            "eventType": row.event_type,
            "userId": str(row.user_id),
            "movieId": str(row.movie_id) if row.movie_id else None,
            "clientTimestamp": row.client_timestamp.isoformat(),
            "serverTimestamp": row.server_timestamp.isoformat(),
            "metadata": row.metadata,
        }
        records.append(Record(topic, 0, offset, str(row.user_id).encode(), orjson.dumps(body)))
    return records
