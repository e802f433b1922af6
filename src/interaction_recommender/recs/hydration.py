"""Hydration: a user's serving profile and their cached recommendation list in ONE round trip.

Redis layout (docs/features.md): the profile key ``{prefix}profile:{userId}`` (20 digits of
version + the compact profile, written beside the full features by the feature writer) and, for
the cached lists, one hash per user
``{prefix}reclists:{userId}`` whose field ``{context}|{k}`` holds a list (recs/cached_list.py)
stamped with the features version and the model version it was computed from (TTL
RECOMMEND_CACHE_TTL_S). A pipeline of GET + HGET reads both; a stamp that differs from the
current versions is a miss, so an event (new features version) or a model swap invalidates
lists in every process at once.
Erasure deletes the user's hash. A user with full features but no profile yet (no event since
the profile was introduced) costs a second round trip once: the full document is read, and the
profile derived from it is written off the request path.

The embedded mode keeps the same structures in memory.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import structlog

from interaction_recommender.features.codec import decode
from interaction_recommender.features.profile import UserProfile, decode_profile, profile_of
from interaction_recommender.features.store import MemoryFeatureStore, RedisFeatureStore
from interaction_recommender.recs.cached_list import CachedList

__all__ = ["Hydrated", "Hydrator", "MemoryHydrator", "RedisHydrator"]

log = structlog.get_logger(__name__)

_TOMBSTONE = b"erased"
_VERSION_DIGITS = 20


@dataclass(frozen=True)
class Hydrated:
    raw_profile: bytes | UserProfile | None
    """The stored serving profile, decoded on demand (a cache hit never needs it); None: the
    user has no features yet."""
    features_version: int
    cached: CachedList | None
    """The stored list for this (context, k), whatever its stamp (the caller checks)."""

    def profile(self) -> UserProfile | None:
        if isinstance(self.raw_profile, bytes):
            return decode_profile(self.raw_profile)
        return self.raw_profile


class Hydrator(Protocol):
    async def hydrate(self, user_id: UUID, slot: str) -> Hydrated:
        """The user's features and the cached list of ``slot`` ("{context}|{k}")."""

    async def store(self, user_id: UUID, slot: str, cached: CachedList) -> None: ...

    async def forget(self, user_id: UUID) -> None:
        """Drop every cached list of the user (erasure)."""


class RedisHydrator:
    def __init__(self, redis: Any, store: RedisFeatureStore, *, prefix: str, ttl_s: int) -> None:
        self._redis = redis
        self._store = store
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._backfills: set[asyncio.Task[None]] = set()

    def _lists_key(self, user_id: UUID) -> str:
        return f"{self._prefix}reclists:{user_id}"

    async def hydrate(self, user_id: UUID, slot: str) -> Hydrated:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._store.profile_key(user_id))
            pipe.hget(self._lists_key(user_id), slot)
            value, listed = await pipe.execute()
        cached = CachedList.from_bytes(listed) if listed is not None else None
        if value == _TOMBSTONE:
            return Hydrated(None, 0, cached)
        if value is None:
            return await self._from_full_features(user_id, cached)
        return Hydrated(value[_VERSION_DIGITS:], int(value[:_VERSION_DIGITS]), cached)

    async def _from_full_features(self, user_id: UUID, cached: CachedList | None) -> Hydrated:
        """No profile stored: the full features, if any; their profile is written later."""
        value = await self._redis.get(self._store.key(user_id))
        if value is None or value == _TOMBSTONE:
            return Hydrated(None, 0, cached)
        profile = profile_of(decode(value[_VERSION_DIGITS:]))
        task = asyncio.create_task(self._backfill(user_id, profile))
        self._backfills.add(task)
        task.add_done_callback(self._backfills.discard)
        return Hydrated(profile, profile.version, cached)

    async def _backfill(self, user_id: UUID, profile: UserProfile) -> None:
        try:
            await self._store.put_profile(user_id, profile)
        except Exception as exc:  # the next request tries again
            log.warning("profile_backfill_failed", error=type(exc).__name__)

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
        profile = self._store.profile(user_id)
        cached = self._lists.get((user_id, slot))
        if cached is not None:
            self._lists.move_to_end((user_id, slot))
        return Hydrated(profile, profile.version if profile else 0, cached)

    async def store(self, user_id: UUID, slot: str, cached: CachedList) -> None:
        self._lists[(user_id, slot)] = cached
        self._lists.move_to_end((user_id, slot))
        while len(self._lists) > self._max_lists:
            self._lists.popitem(last=False)

    async def forget(self, user_id: UUID) -> None:
        for key in [k for k in self._lists if k[0] == user_id]:
            del self._lists[key]
