"""The online feature store: Redis in production, a dict in the embedded mode. Both implement
the same protocol and pass the same tests (tests/features/test_store.py).

Redis key layout (docs/features.md): two string keys per user, written together by ``put_many``:
``{REDIS_KEY_PREFIX}features:{userId}`` (the full features: the version as 20 ASCII digits, then
the encoding of features/codec.py) and ``{REDIS_KEY_PREFIX}profile:{userId}`` (the serving
profile that recommendations read: the same 20 digits, then features/profile.py's encoding);
TTL FEATURES_TTL_S, renewed on every write. A write replaces a value only if its version is
newer (checked atomically in a Lua script), so two consumers that both hold a user for a moment
during a rebalance cannot put an older version back. An erased user's keys hold the tombstone
``erased`` (same TTL), which no write replaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

from interaction_recommender.features.codec import decode, encode
from interaction_recommender.features.profile import UserProfile, encode_profile, profile_of
from interaction_recommender.features.state import UserFeatures

__all__ = ["FeatureStore", "MemoryFeatureStore", "RedisFeatureStore", "invalidation_channel"]

_TOMBSTONE = b"erased"
_VERSION_DIGITS = 20

# KEYS[1] = key; ARGV = version (20 digits), value, ttl seconds. Returns 1 if written.
_PUT_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  if current == 'erased' then return 0 end
  if tonumber(string.sub(current, 1, 20)) >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


def invalidation_channel(prefix: str) -> str:
    """The Redis channel the writer announces each user it wrote on (the user id as text); the
    API processes' near caches listen (recs/near_cache.py)."""
    return f"{prefix}invalidate"


class FeatureStore(Protocol):
    name: str

    async def get_many(self, user_ids: Iterable[UUID]) -> dict[UUID, UserFeatures]:
        """The stored features of those users that have some (one round trip)."""

    async def put_many(
        self, features: Sequence[UserFeatures], encoded: Mapping[UUID, bytes] | None = None
    ) -> None:
        """Store each unless the stored version is the same or newer, or the user was erased.
        ``encoded`` may carry ``encode(f)`` per user when the caller has it already."""

    async def erase(self, user_id: UUID) -> None:
        """Delete the user's features and block later writes (a tombstone)."""

    async def probe(self) -> str: ...


class RedisFeatureStore:
    name = "redis"

    def __init__(self, redis: Any, *, prefix: str, ttl_s: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._put = redis.register_script(_PUT_IF_NEWER)
        self._invalidations = invalidation_channel(prefix)

    def key(self, user_id: UUID) -> str:
        return f"{self._prefix}features:{user_id}"

    def profile_key(self, user_id: UUID) -> str:
        return f"{self._prefix}profile:{user_id}"

    async def get_many(self, user_ids: Iterable[UUID]) -> dict[UUID, UserFeatures]:
        ids = list(user_ids)
        if not ids:
            return {}
        values = await self._redis.mget([self.key(u) for u in ids])
        found: dict[UUID, UserFeatures] = {}
        for user_id, value in zip(ids, values, strict=True):
            if value is not None and value != _TOMBSTONE:
                found[user_id] = decode(value[_VERSION_DIGITS:])
        return found

    async def put_many(
        self, features: Sequence[UserFeatures], encoded: Mapping[UUID, bytes] | None = None
    ) -> None:
        if not features:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in features:
                version = b"%020d" % item.version
                await self._put(
                    keys=[self.key(item.user_id)],
                    args=[version, version + _encoded(item, encoded), self._ttl_s],
                    client=pipe,
                )
                await self._put(
                    keys=[self.profile_key(item.user_id)],
                    args=[version, version + encode_profile(profile_of(item)), self._ttl_s],
                    client=pipe,
                )
                pipe.publish(self._invalidations, str(item.user_id))
            await pipe.execute()

    async def put_profile(self, user_id: UUID, profile: UserProfile) -> None:
        """The serving profile alone (a reader that found only the full features writes it),
        under the same rule: only if newer, never over a tombstone."""
        version = b"%020d" % profile.version
        await self._put(
            keys=[self.profile_key(user_id)],
            args=[version, version + encode_profile(profile), self._ttl_s],
        )

    async def erase(self, user_id: UUID) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self.key(user_id), _TOMBSTONE, ex=self._ttl_s)
            pipe.set(self.profile_key(user_id), _TOMBSTONE, ex=self._ttl_s)
            await pipe.execute()

    async def memory_usage(self, user_id: UUID) -> int:
        """Bytes Redis uses for the user's key (MEMORY USAGE), 0 when absent."""
        return int(await self._redis.memory_usage(self.key(user_id)) or 0)

    async def probe(self) -> str:
        await self._redis.ping()
        return "ok"


class MemoryFeatureStore:
    """The embedded mode's store: the same rules, held in this process."""

    name = "memory"

    def __init__(self) -> None:
        self._features: dict[UUID, UserFeatures] = {}
        self._profiles: dict[UUID, UserProfile] = {}
        self._erased: set[UUID] = set()

    async def get_many(self, user_ids: Iterable[UUID]) -> dict[UUID, UserFeatures]:
        return {u: self._features[u] for u in user_ids if u in self._features}

    async def put_many(
        self, features: Sequence[UserFeatures], encoded: Mapping[UUID, bytes] | None = None
    ) -> None:
        for item in features:
            current = self._features.get(item.user_id)
            if item.user_id in self._erased or (current and current.version >= item.version):
                continue
            self._features[item.user_id] = item
            self._profiles[item.user_id] = profile_of(item)

    def profile(self, user_id: UUID) -> UserProfile | None:
        """The serving profile, kept beside the features like the Redis store keeps it."""
        return self._profiles.get(user_id)

    async def erase(self, user_id: UUID) -> None:
        self._features.pop(user_id, None)
        self._profiles.pop(user_id, None)
        self._erased.add(user_id)

    async def probe(self) -> str:
        return f"{len(self._features)} users in memory"


def _encoded(features: UserFeatures, encoded: Mapping[UUID, bytes] | None) -> bytes:
    if encoded is not None and features.user_id in encoded:
        return encoded[features.user_id]
    return encode(features)
