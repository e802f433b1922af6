"""Hydration reads the serving profile the feature writer stores beside the full features; a user
with full features but no profile yet is read from the full document once, and the profile is
written for next time; an erased user hydrates as no one."""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from interaction_recommender.features.state import UserFeatures, WatchEntry
from interaction_recommender.features.store import RedisFeatureStore
from interaction_recommender.recs.hydration import RedisHydrator

AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def stores(redis: Redis) -> tuple[RedisFeatureStore, RedisHydrator]:
    """A feature store and a hydrator on keys of their own."""
    prefix = f"test-{uuid.uuid4()}:"
    store = RedisFeatureStore(redis, prefix=prefix, ttl_s=60)
    return store, RedisHydrator(redis, store, prefix=prefix, ttl_s=60)


def _features(version: int) -> UserFeatures:
    movie = uuid.uuid4()
    entry = WatchEntry(95.0, True, 1, 0, 3600, AT, None, 3600, 95.0, 95.0, False, 1)
    return UserFeatures(
        user_id=uuid.uuid4(), version=version, watch_history=OrderedDict({movie: entry})
    )


async def test_the_profile_is_read_and_a_missing_one_is_backfilled(
    redis: Redis, stores: tuple[RedisFeatureStore, RedisHydrator]
) -> None:
    store, hydrator = stores
    features = _features(version=7)
    await store.put_many([features])

    stored = await hydrator.hydrate(features.user_id, "home:|10")
    profile = stored.profile()
    assert profile is not None
    assert stored.features_version == profile.version == 7
    assert profile.movies.tobytes() == next(iter(features.watch_history)).bytes

    # A user written before profiles existed: only the full document.
    await redis.delete(store.profile_key(features.user_id))
    again = await hydrator.hydrate(features.user_id, "home:|10")
    assert again.features_version == 7
    assert again.profile() is not None
    for _ in range(50):
        if await redis.exists(store.profile_key(features.user_id)):
            break
        await asyncio.sleep(0.02)
    assert await redis.exists(store.profile_key(features.user_id))


async def test_an_erased_user_hydrates_as_no_one(
    stores: tuple[RedisFeatureStore, RedisHydrator],
) -> None:
    store, hydrator = stores
    features = _features(version=3)
    await store.put_many([features])

    await store.erase(features.user_id)
    await store.put_many([_features_of(features.user_id, version=4)])  # a late write is refused

    hydrated = await hydrator.hydrate(features.user_id, "home:|10")
    assert hydrated.profile() is None
    assert hydrated.features_version == 0


def _features_of(user_id: uuid.UUID, *, version: int) -> UserFeatures:
    features = _features(version)
    return UserFeatures(user_id=user_id, version=version, watch_history=features.watch_history)
