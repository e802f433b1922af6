"""The near cache: a repeated recommendation is answered from the process's memory; new features
evict it at once through the invalidation channel, and even when that message is lost, an answer
that starts more than NEAR_CACHE_TTL_S after the new features were stored reflects them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from interaction_recommender import metrics
from interaction_recommender.model.engine import Recommendation
from interaction_recommender.recs.cached_list import CachedList
from interaction_recommender.recs.near_cache import NearCache
from tests.fixtures.app import Service
from tests.fixtures.serving import eventually, watch
from tests.recs.world import PlantedWorld


@pytest.fixture
async def near(redis_url: str) -> AsyncIterator[NearCache]:
    client = Redis.from_url(redis_url)
    cache = NearCache(client, prefix=f"test-{uuid.uuid4()}:", ttl_s=0.5, max_entries=3)
    cache.start()
    await eventually(lambda: _true(cache.subscribed), timeout=5)
    yield cache
    await cache.stop()
    await client.aclose()


async def _true(value: bool) -> bool:
    return value


def _listed(model: str = "m1") -> CachedList:
    return CachedList.of(1, model, "home", [Recommendation(uuid.uuid4(), 0.9, ("popular",), 0.9)])


async def test_an_entry_lives_its_ttl_for_its_model_only(near: NearCache) -> None:
    user = uuid.uuid4()
    near.put(user, "home:|10", _listed(), started=time.monotonic())

    assert near.get(user, "home:|10", "m1") is not None
    assert near.get(user, "home:|10", "m2") is None  # another model: never served
    near.put(user, "home:|10", _listed(), started=time.monotonic())
    await asyncio.sleep(0.6)
    assert near.get(user, "home:|10", "m1") is None


async def test_a_published_user_is_evicted_in_every_process(near: NearCache) -> None:
    user, other = uuid.uuid4(), uuid.uuid4()
    for who in (user, other):
        near.put(who, "home:|10", _listed(), started=time.monotonic())

    await near.publish(user)  # what the feature writer does after storing the user

    await eventually(lambda: _true(near.get(user, "home:|10", "m1") is None), timeout=2)
    assert near.get(other, "home:|10", "m1") is not None


async def test_the_cache_holds_a_bounded_number_of_lists(near: NearCache) -> None:
    users = [uuid.uuid4() for _ in range(5)]
    for user in users:
        near.put(user, "home:|10", _listed(), started=time.monotonic())

    assert len(near) == 3
    assert near.get(users[0], "home:|10", "m1") is None
    assert near.get(users[-1], "home:|10", "m1") is not None


async def test_expired_lists_are_dropped_not_kept_until_the_cache_is_full(
    near: NearCache,
) -> None:
    """Lists never asked for again (a detail page's, a similar movie's) must not pile up to
    max_entries: the soak benchmark saw ~0.3 MB/s of RSS growth from them (bench/soak.py)."""
    long_ago = time.monotonic() - 10.0  # requests that started before the TTL
    for _ in range(2):
        near.put(uuid.uuid4(), "detail:|10", _listed(), started=long_ago)
    fresh = uuid.uuid4()
    near.put(fresh, "home:|10", _listed(), started=time.monotonic())

    assert len(near) == 1
    assert near.get(fresh, "home:|10", "m1") is not None


@pytest.mark.parametrize("mode", ["platform"], indirect=True)
async def test_new_features_are_reflected_within_the_ttl_even_if_the_message_is_lost(
    serving: Service, world: PlantedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    near = serving.runtime.near_cache
    assert near is not None
    user = str(uuid.uuid4())
    await watch(serving, user, world.drama[3])
    url = f"/api/v1/recommend/{user}?k=10"

    async def recommended() -> bool:
        body = (await serving.client.get(url)).json()
        return bool(body["recommendations"]) and "collaborative" in str(body)

    await eventually(recommended)
    before = metrics.RECOMMEND_CACHE.labels("near")._value.get()
    first = (await serving.client.get(url)).json()
    assert metrics.RECOMMEND_CACHE.labels("near")._value.get() == before + 1  # from memory

    lost: list[Any] = []
    monkeypatch.setattr(near, "_on_message", lost.append)  # fault: every message is lost
    watched = uuid.UUID(first["recommendations"][0]["movieId"])
    await watch(serving, user, watched)

    async def stored() -> bool:
        features = (await serving.client.get(f"/api/v1/features/{user}")).json()
        return str(watched) in str(features)

    await eventually(stored)
    stored_at = time.monotonic()
    await eventually(lambda: _true(bool(lost)), timeout=5)  # the message came, and was lost
    await asyncio.sleep(max(0.0, stored_at + serving.settings.near_cache_ttl_s - time.monotonic()))

    answer = (await serving.client.get(url)).json()
    assert str(watched) not in {item["movieId"] for item in answer["recommendations"]}
