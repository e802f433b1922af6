"""The near cache: each API process keeps the lists it served lately, so a repeated request is
answered with no Redis round trip.

Freshness is bounded, not exact:
- an entry lives at most ``ttl_s`` (NEAR_CACHE_TTL_S), counted from when the request that made
  it started (before its Redis read), so an answer that starts more than ``ttl_s`` after new
  features were stored never comes from an entry made before them;
- the feature writer publishes ``(userId, version)`` on the invalidation channel after each write,
  and erasure publishes the user: every process drops that user's entries at once;
- an entry is only served for the model version it was made with, and hidden movies are filtered
  from it at every hit (the process's own catalog);
- the whole cache is cleared whenever the subscription (re)starts, since messages may have been
  missed meanwhile.
The channel is ``{REDIS_KEY_PREFIX}invalidate``; a message is ``<userId>`` (or ``*``: everyone).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog

from interaction_recommender import metrics
from interaction_recommender.background import BackgroundLoop
from interaction_recommender.features.store import invalidation_channel
from interaction_recommender.recs.cached_list import CachedList

__all__ = ["NearCache"]

log = structlog.get_logger(__name__)

_RESUBSCRIBE_S = 1.0


@dataclass(frozen=True, slots=True)
class _Entry:
    expires_at: float
    listed: CachedList


class NearCache(BackgroundLoop):
    def __init__(self, redis: Any, *, prefix: str, ttl_s: float, max_entries: int) -> None:
        super().__init__("near-cache-invalidation")
        self._redis = redis
        self._channel = invalidation_channel(prefix)
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[UUID, str], _Entry] = OrderedDict()
        self._by_user: dict[UUID, set[str]] = {}
        self.subscribed = False

    async def stop(self) -> None:
        await self._end(cancel_after_s=0)  # waiting in get_message has nothing to finish

    @property
    def enabled(self) -> bool:
        return self._ttl_s > 0

    def get(self, user_id: UUID, slot: str, model_version: str) -> CachedList | None:
        entry = self._entries.get((user_id, slot))
        if entry is None:
            return None
        if entry.expires_at <= time.monotonic() or entry.listed.model_version != model_version:
            self._drop(user_id, slot)
            return None
        return entry.listed

    def put(self, user_id: UUID, slot: str, listed: CachedList, *, started: float) -> None:
        """Keep ``listed`` until ``started`` (the request's start, monotonic) + the TTL."""
        if not self.enabled or not self.subscribed:
            return  # without the channel, only the TTL would bound staleness: keep nothing
        self._entries[(user_id, slot)] = _Entry(started + self._ttl_s, listed)
        self._entries.move_to_end((user_id, slot))
        self._by_user.setdefault(user_id, set()).add(slot)
        # Oldest first is (nearly) soonest to expire: drop the expired ones from that end, so
        # lists nobody asks for again (detail and similar pages) do not wait for max_entries.
        now = time.monotonic()
        while self._entries:
            (old_user, old_slot), oldest = next(iter(self._entries.items()))
            if oldest.expires_at > now and len(self._entries) <= self._max_entries:
                break
            del self._entries[(old_user, old_slot)]
            self._forget_slot(old_user, old_slot)

    def evict(self, user_id: UUID) -> None:
        """Drop the user's entries in this process."""
        for slot in self._by_user.pop(user_id, set()):
            self._entries.pop((user_id, slot), None)

    async def forget(self, user_id: UUID) -> None:
        """Erasure: drop the user's entries here and tell every other process to."""
        self.evict(user_id)
        await self.publish(user_id)

    def clear(self) -> None:
        self._entries.clear()
        self._by_user.clear()

    def __len__(self) -> int:
        return len(self._entries)

    async def publish(self, user_id: UUID | None) -> None:
        """Tell every process (this one included) to drop the user's entries (None: all)."""
        await self._redis.publish(self._channel, str(user_id) if user_id else "*")

    def _drop(self, user_id: UUID, slot: str) -> None:
        self._entries.pop((user_id, slot), None)
        self._forget_slot(user_id, slot)

    def _forget_slot(self, user_id: UUID, slot: str) -> None:
        slots = self._by_user.get(user_id)
        if slots is not None:
            slots.discard(slot)
            if not slots:
                del self._by_user[user_id]

    def _on_message(self, data: bytes) -> None:
        if data == b"*":
            self.clear()
            return
        try:
            self.evict(UUID(data.decode()))
        except ValueError:
            log.warning("near_cache_bad_message")
        metrics.NEAR_CACHE_INVALIDATIONS.inc()

    async def _run(self) -> None:
        while not self.stopping:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    self.clear()  # messages may have been missed before this subscription
                    self.subscribed = True
                    while not self.stopping:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None and message.get("type") == "message":
                            self._on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: nothing is kept until it is back
                log.warning("near_cache_subscription_lost", error=type(exc).__name__)
            finally:
                self.subscribed = False
                self.clear()
            await self.pause(_RESUBSCRIBE_S)
