"""The feature pipeline end to end: events → consumer → snapshot + online store → API."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from interaction_recommender.bus.base import Message, Record
from interaction_recommender.features.consumer import FeatureConsumer
from interaction_recommender.features.repository import SnapshotRepository
from interaction_recommender.features.state import UserFeatures
from interaction_recommender.settings import Settings
from interaction_recommender.storage.tables import dead_letters, outbox, raw_events, user_features
from tests.fixtures.app import Service, feature_consumer, run_service
from tests.fixtures.contract import assert_error_shape, assert_instant, assert_uuid
from tests.fixtures.factories import event_payload, new_id

ADMIN = "admin-token-0123456789"


@pytest.fixture
async def consuming(settings: Settings) -> AsyncIterator[Service]:
    """The service with its consumers running in this process (both modes)."""
    async with run_service(
        settings.model_copy(update={"enable_consumers": True, "admin_token": ADMIN})
    ) as service:
        yield service


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout} s"
        await asyncio.sleep(0.1)


async def _features(service: Service, user: str) -> dict[str, Any]:
    response = await service.client.get(f"/api/v1/features/{user}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _post_all(service: Service, bodies: list[tuple[str, dict[str, Any]]]) -> None:
    for event_type, body in bodies:
        response = await service.client.post(f"/api/v1/events/{event_type}", json=body)
        assert response.status_code == 200, response.text


async def _wait_for_interactions(service: Service, user: str, count: int) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal seen
        response = await service.client.get(f"/api/v1/features/{user}")
        seen = response.json() if response.status_code == 200 else {}
        return seen.get("features", {}).get("totalInteractions") == count

    try:
        await _eventually(done, timeout=15)
    except AssertionError:
        raise AssertionError(f"expected {count} interactions, last seen: {seen}") from None
    return seen


def _user_events(user: str, movie: str) -> list[tuple[str, dict[str, Any]]]:
    session = new_id()
    watch = [
        (
            "watch",
            event_payload(
                "watch",
                user_id=user,
                movie_id=movie,
                metadata={
                    "watchDuration": seconds,
                    "progressPercent": progress,
                    "sessionId": session,
                    "device": "tv",
                    "quality": "4k",
                },
            ),
        )
        for seconds, progress in ((60, 10.0), (1800, 50.0), (3500, 97.0))
    ]
    return [
        *watch,
        ("rating", event_payload("rating", user_id=user, movie_id=movie, metadata={"rating": 4.5})),
        ("favorite", event_payload("favorite", user_id=user, movie_id=movie)),
        ("search", event_payload("search", user_id=user, metadata={"query": "space opera"})),
    ]


async def test_an_events_effect_is_visible_within_10s_and_decodes(consuming: Service) -> None:
    user, movie = new_id(), new_id()
    await _post_all(consuming, _user_events(user, movie))

    body = await _wait_for_interactions(consuming, user, 6)

    assert body["userId"] == user
    assert isinstance(body["version"], int)
    assert_instant(body["updatedAt"])
    features = body["features"]
    assert isinstance(features["totalInteractions"], int)
    assert isinstance(features["avgRating"], float)
    assert features["avgRating"] == 4.5
    assert features["counts"]["watch"] == 3
    assert features["completedCount"] == 1
    history = features["watchHistory"]
    assert [h["movieId"] for h in history] == [movie]
    assert history[0]["views"] == 1  # three heartbeats, one view
    assert features["favorites"] == [movie]


async def test_unknown_user_is_404_and_a_stored_but_unprocessed_user_is_200(
    service: Service,
) -> None:
    unknown = await service.client.get(f"/api/v1/features/{new_id()}")
    assert unknown.status_code == 404
    assert_error_shape(unknown.json())

    if not service.runtime.consumers:  # platform mode here: nothing consumes, so nothing applied
        user = new_id()
        await _post_all(service, [("watch", event_payload(user_id=user))])
        body = await _features(service, user)
        assert body["version"] == 0
        assert body["features"]["totalInteractions"] == 0


async def test_refresh_equals_the_incremental_features_and_clamps_days_back(
    consuming: Service,
) -> None:
    user, movie = new_id(), new_id()
    await _post_all(consuming, _user_events(user, movie) + _user_events(user, new_id()))
    incremental = await _wait_for_interactions(consuming, user, 12)

    refreshed = await consuming.client.post(f"/api/v1/features/{user}/refresh?days_back=0")
    huge = await consuming.client.post(f"/features/{user}/refresh?days_back=100000")
    unknown = await consuming.client.post(f"/api/v1/features/{new_id()}/refresh")
    after = await _features(consuming, user)

    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["userId"] == user
    assert body["status"] == "refreshed"
    assert isinstance(body["featureCount"], int)
    assert_instant(body["refreshedAt"])
    assert huge.status_code == 200
    assert unknown.status_code == 404
    assert after["version"] > incremental["version"]
    assert after["features"] == incremental["features"]


async def _stored(service: Service, user: str) -> UserFeatures:
    async with service.runtime.database.transaction() as conn:
        found = await SnapshotRepository(conn).load_many([uuid.UUID(user)])
    return found[uuid.UUID(user)]


async def test_redelivery_and_replay_from_offset_0_change_nothing(consuming: Service) -> None:
    user, movie = new_id(), new_id()
    await _post_all(consuming, _user_events(user, movie))
    await _wait_for_interactions(consuming, user, 6)
    before = await _stored(consuming, user)

    # Everything on the topic, again, through a consumer of another group (= offset 0).
    runtime = consuming.runtime
    replayer = feature_consumer(runtime)
    subscription = runtime.bus.subscribe([runtime.topics.interaction_events], "replay-" + new_id())
    replayed = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        records = await subscription.poll(1000, 1.0)
        if not records and replayed:
            break
        await replayer.handle(records)
        await replayer.handle(records)  # and every batch delivered twice
        replayed += len(records)
    await subscription.close()

    assert replayed >= 6
    assert await _stored(consuming, user) == before


async def test_a_relay_republish_changes_nothing(
    consuming: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, movie = new_id(), new_id()
    bus = consuming.runtime.bus
    real_publish = bus.publish
    published = 0

    async def every_batch_twice(messages: list[Message]) -> None:
        # As if each acknowledgement was lost: the relay's retry sends the batch again.
        nonlocal published
        await real_publish(messages)
        await real_publish(messages)
        published += 2 * sum(
            m.topic == consuming.runtime.topics.interaction_events for m in messages
        )

    monkeypatch.setattr(bus, "publish", every_batch_twice)
    features = next(c for c in consuming.runtime.consumers if c.name == "features")
    processed_before = features.state.processed
    await _post_all(consuming, _user_events(user, movie))

    async def every_copy_consumed() -> bool:
        return published >= 12 and features.state.processed >= processed_before + published

    await _eventually(every_copy_consumed)
    body = await _wait_for_interactions(consuming, user, 6)  # each event applied once
    assert body["features"]["counts"]["watch"] == 3


async def test_poison_goes_to_the_dlq_later_events_apply_and_a_replay_applies_it_once(
    consuming: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from interaction_recommender.features import consumer as consumer_module

    user, bad_movie, good_movie = new_id(), new_id(), new_id()
    real_apply = consumer_module.apply_events

    def broken_for_one_movie(features, events, config=None, **kw):  # type: ignore[no-untyped-def]
        if any(str(e.movie_id) == bad_movie for e, _ in events):
            raise RuntimeError("extraction bug")
        return real_apply(features, events, config or consumer_module.DEFAULT_CONFIG, **kw)

    monkeypatch.setattr(consumer_module, "apply_events", broken_for_one_movie)
    await _post_all(
        consuming, [("rating", event_payload("rating", user_id=user, movie_id=bad_movie))]
    )
    await _post_all(
        consuming, [("rating", event_payload("rating", user_id=user, movie_id=good_movie))]
    )
    # An undecodable message on the topic as well (not JSON at all).
    await consuming.runtime.bus.publish(
        [Message(consuming.runtime.topics.interaction_events, user.encode(), b"\xff not json")]
    )

    body = await _wait_for_interactions(consuming, user, 1)  # the good event applied
    headers = {"Authorization": f"Bearer {ADMIN}"}

    async def dead_lettered() -> bool:
        listing = await consuming.client.get("/api/v1/admin/dlq", headers=headers)
        return listing.json()["pendingCount"] >= 2

    await _eventually(dead_lettered)
    listing = (await consuming.client.get("/api/v1/admin/dlq", headers=headers)).json()
    letters = listing["deadLetters"]
    # both: the extraction bug, and the undecodable body (refused by the message's schema)
    assert {d["errorType"] for d in letters} == {"RuntimeError", "ValidationError"}
    undecodable = next(d for d in letters if d["errorType"] == "ValidationError")
    assert undecodable["original"] == {
        "encoding": "base64",
        "value": base64.b64encode(b"\xff not json").decode(),
    }  # kept byte for byte, for a replay after a fix
    assert undecodable["consumer"].endswith("-features")
    extraction = next(d for d in letters if d["errorType"] == "RuntimeError")
    assert extraction["attempts"] == 3
    assert extraction["userId"] == user
    assert extraction["original"]["encoding"] == "base64"  # one encoding: a computable size
    assert body["features"]["ratingCount"] == 1

    monkeypatch.setattr(consumer_module, "apply_events", real_apply)  # the fix is deployed
    replay = await consuming.client.post(
        "/api/v1/admin/dlq/replay", json={"ids": [extraction["deadLetterId"]]}, headers=headers
    )
    assert replay.json() == {"replayed": [extraction["deadLetterId"]]}
    fixed = await _wait_for_interactions(consuming, user, 2)
    again = await consuming.client.post(
        "/api/v1/admin/dlq/replay", json={"ids": [extraction["deadLetterId"]]}, headers=headers
    )
    await asyncio.sleep(1.0)

    assert again.json() == {"replayed": []}
    final = await _features(consuming, user)
    assert final["features"]["ratingCount"] == 2
    assert final["features"]["totalInteractions"] == 2  # applied exactly once
    assert fixed["features"]["ratingCount"] == 2


async def test_erasure_leaves_nothing_and_a_replay_cannot_revive_the_user(
    consuming: Service,
) -> None:
    user, movie = new_id(), new_id()
    await _post_all(consuming, _user_events(user, movie))
    await _wait_for_interactions(consuming, user, 6)
    headers = {"Authorization": f"Bearer {ADMIN}"}

    refused = await consuming.client.delete(f"/api/v1/users/{user}")
    erased = await consuming.client.delete(f"/users/{user}", headers=headers)

    assert refused.status_code == 401
    assert erased.status_code == 202, erased.text
    steps = {step["name"]: step["status"] for step in erased.json()["steps"]}
    # every store is up: done before the answer, but the sweep (ERASURE_SWEEP_AFTER_S later)
    assert steps == {
        "database": "done",
        "online_features": "done",
        "caches": "done",
        "sweep": "pending",
    }
    assert_uuid(erased.json()["userId"])
    user_id = uuid.UUID(user)
    async with consuming.runtime.database.transaction() as conn:
        for table, column in (
            (raw_events, raw_events.c.user_id),
            (user_features, user_features.c.user_id),
            (dead_letters, dead_letters.c.user_id),
        ):
            left = (
                await conn.execute(select(func.count()).select_from(table).where(column == user_id))
            ).scalar()
            assert left == 0, table.name
        # Sent or not: no outbox row names the user but the processed_features tombstones, and
        # no row (sent ones included) still holds one of the user's events.
        keyed = (
            await conn.execute(
                select(outbox.c.topic, outbox.c.payload).where(outbox.c.message_key == user)
            )
        ).all()
        holding = (
            await conn.execute(select(func.count()).where(outbox.c.payload.contains(user.encode())))
        ).scalar()
        assert {(topic, payload) for topic, payload in keyed} <= {
            (consuming.runtime.topics.processed_features, None)
        }
        assert holding == 0
    assert user_id not in await consuming.runtime.feature_store.get_many([user_id])
    assert (await consuming.client.get(f"/api/v1/features/{user}")).status_code == 404

    # Old messages replayed: the user stays erased.
    runtime = consuming.runtime
    replayer = feature_consumer(runtime)
    subscription = runtime.bus.subscribe([runtime.topics.interaction_events], "replay-" + new_id())
    for _ in range(5):
        await replayer.handle(await subscription.poll(1000, 1.0))
    await subscription.close()
    assert (await consuming.client.get(f"/api/v1/features/{user}")).status_code == 404
    assert user_id not in await consuming.runtime.feature_store.get_many([user_id])


async def test_a_heavy_users_online_features_stay_bounded(consuming: Service) -> None:
    """10,000 events of one user over 6,000 movies: the stored features stay under 120 KB."""
    from interaction_recommender.events.messages import SCHEMA_VERSION
    from interaction_recommender.features.store import RedisFeatureStore

    runtime = consuming.runtime
    handler = feature_consumer(runtime)
    user = uuid.uuid4()
    movies = [uuid.uuid4() for _ in range(6000)]
    records = []
    for n in range(10_000):
        body = {
            "schemaVersion": SCHEMA_VERSION,
            "eventId": str(uuid.uuid4()),
            "sequence": n + 1,
            "requestId": str(uuid.uuid4()),
            "eventType": "watch",
            "userId": str(user),
            "movieId": str(movies[n % 6000]),
            "clientTimestamp": "2026-11-01T12:00:00Z",
            "serverTimestamp": "2026-11-01T12:00:00Z",
            "metadata": {"watchDuration": 3000, "progressPercent": 100.0, "sessionId": str(n)},
        }
        records.append(Record("t", 0, n, str(user).encode(), orjson.dumps(body)))
    for start in range(0, len(records), 500):
        await handler.handle(records[start : start + 500])

    stored = await runtime.feature_store.get_many([user])
    assert stored[user].total_interactions == 10_000
    assert stored[user].seen_count == 5000  # the documented cap
    async with runtime.database.transaction() as conn:
        size = (
            await conn.execute(
                select(func.length(user_features.c.data)).where(user_features.c.user_id == user)
            )
        ).scalar()
    assert size < 120_000
    if isinstance(runtime.feature_store, RedisFeatureStore):
        assert await runtime.feature_store.memory_usage(user) < 120_000


async def _count(service: Service, *conditions: Any) -> int:
    """Rows matching all conditions (on one table)."""
    async with service.runtime.database.transaction() as conn:
        return int((await conn.execute(select(func.count()).where(*conditions))).scalar_one())


async def test_a_crash_between_snapshot_and_redis_is_repaired_by_the_redelivery(
    consuming: Service,
) -> None:
    """A process killed after its snapshot commit but before its Redis write: the batch comes
    back (offsets were not committed) as repeats, and their handling brings Redis up to date."""
    from interaction_recommender.events.messages import SCHEMA_VERSION

    runtime = consuming.runtime
    user = uuid.uuid4()

    def record(sequence: int) -> Record:
        body = {
            "schemaVersion": SCHEMA_VERSION,
            "eventId": str(uuid.uuid4()),
            "sequence": sequence,
            "requestId": str(uuid.uuid4()),
            "eventType": "search",
            "userId": str(user),
            "movieId": None,
            "clientTimestamp": "2026-11-01T12:00:00Z",
            "serverTimestamp": "2026-11-01T12:00:00Z",
            "metadata": {"query": "noir"},
        }
        return Record("t", 0, sequence, str(user).encode(), orjson.dumps(body))

    def consumer(store: Any) -> FeatureConsumer:
        return feature_consumer(runtime, store)

    class DiesBeforeRedis:
        name = "dies"

        async def put_many(self, features: Any, encoded: Any = None) -> None:
            raise asyncio.CancelledError  # the process is gone

    await consumer(runtime.feature_store).handle([record(1)])
    with pytest.raises(asyncio.CancelledError):
        await consumer(DiesBeforeRedis()).handle([record(2)])
    stale = (await runtime.feature_store.get_many([user]))[user]
    assert stale.total_interactions == 1  # Redis is behind the snapshot

    await consumer(runtime.feature_store).handle([record(2)])  # the redelivery

    assert (await runtime.feature_store.get_many([user]))[user].total_interactions == 2
