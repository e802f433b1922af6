"""Hydration: a user's features and their cached recommendation list in ONE round trip.

Redis layout (docs/features.md): the features key ``{prefix}features:{userId}`` (20 digits of
version + encoded features) and, for the cached lists, one hash per user
``{prefix}reclists:{userId}`` whose field ``{context}|{k}`` holds a JSON list stamped with the
features version and the model version it was computed from (TTL RECOMMEND_CACHE_TTL_S). A
pipeline of GET + HGET reads both; a stamp that differs from the current versions is a miss, so
an event (new features version) or a model swap invalidates lists in every process at once.
Erasure deletes the user's hash.

The embedded mode keeps the same structures in memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import orjson

from interaction_recommender.features.codec import decode
from interaction_recommender.features.state import UserFeatures
from interaction_recommender.features.store import MemoryFeatureStore

__all__ = ["CachedList", "Hydrated", "Hydrator", "MemoryHydrator", "RedisHydrator"]


@dataclass(frozen=True)
class CachedList:
    features_version: int
    model_version: str
    policy: str
    items: list[tuple[str, float, list[str]]]
    """(movieId, score, reasons), best first."""

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {"f": self.features_version, "m": self.model_version, "p": self.policy, "i": self.items}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedList:
        raw = orjson.loads(data)
        return cls(raw["f"], raw["m"], raw["p"], [(i[0], i[1], i[2]) for i in raw["i"]])


@dataclass(frozen=True)
class Hydrated:
    raw_features: bytes | UserFeatures | None
    """The stored features, decoded on demand (a cache hit never needs them); None: none yet."""
    features_version: int
    cached: CachedList | None
    """The stored list for this (context, k), whatever its stamp (the caller checks)."""

    def features(self) -> UserFeatures | None:
        if isinstance(self.raw_features, bytes):
            return decode(self.raw_features)
        return self.raw_features


class Hydrator(Protocol):
    async def hydrate(self, user_id: UUID, slot: str) -> Hydrated:
        """The user's features and the cached list of ``slot`` ("{context}|{k}")."""

    async def store(self, user_id: UUID, slot: str, cached: CachedList) -> None: ...

    async def forget(self, user_id: UUID) -> None:
        """Drop every cached list of the user (erasure)."""


class RedisHydrator:
    def __init__(self, redis: Any, *, prefix: str, ttl_s: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_s = ttl_s

    def _features_key(self, user_id: UUID) -> str:
        return f"{self._prefix}features:{user_id}"

    def _lists_key(self, user_id: UUID) -> str:
        return f"{self._prefix}reclists:{user_id}"

    async def hydrate(self, user_id: UUID, slot: str) -> Hydrated:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._features_key(user_id))
            pipe.hget(self._lists_key(user_id), slot)
            value, listed = await pipe.execute()
        raw: bytes | None = None
        version = 0
        if value is not None and value != b"erased":
            version, raw = int(value[:20]), value[20:]
        cached = CachedList.from_bytes(listed) if listed is not None else None
        return Hydrated(raw, version, cached)

    async def store(self, user_id: UUID, slot: str, cached: CachedList) -> None:
        key = self._lists_key(user_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, slot, cached.to_bytes())
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def forget(self, user_id: UUID) -> None:
        await self._redis.delete(self._lists_key(user_id))


class MemoryHydrator:
    """The embedded mode: the in-memory feature store and a bounded LRU of lists."""

    def __init__(self, store: MemoryFeatureStore, *, max_lists: int = 100_000) -> None:
        self._store = store
        self._lists: OrderedDict[tuple[UUID, str], CachedList] = OrderedDict()
        self._max_lists = max_lists

    async def hydrate(self, user_id: UUID, slot: str) -> Hydrated:
        features = (await self._store.get_many([user_id])).get(user_id)
        cached = self._lists.get((user_id, slot))
        if cached is not None:
            self._lists.move_to_end((user_id, slot))
        return Hydrated(features, features.version if features else 0, cached)

    async def store(self, user_id: UUID, slot: str, cached: CachedList) -> None:
        self._lists[(user_id, slot)] = cached
        self._lists.move_to_end((user_id, slot))
        while len(self._lists) > self._max_lists:
            self._lists.popitem(last=False)

    async def forget(self, user_id: UUID) -> None:
        for key in [k for k in self._lists if k[0] == user_id]:
            del self._lists[key]
