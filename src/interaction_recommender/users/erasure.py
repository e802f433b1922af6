"""User erasure: everything the service keeps about a user, gone, and kept gone.

One transaction removes the raw events, the user's pending outbox messages, dead letters and the
feature snapshot, records the user in `erased_users` (which the consumers check, so a replay of
old Kafka messages cannot bring the user back) and queues a tombstone for `processed_features`.
The Redis features then get a tombstone that no later write replaces. Messages already in Kafka
stay there until the topic's retention drops them; every consumer ignores them. The user's
impressions and feedback go in the same transaction (after this process's impression buffer
dropped theirs); then every cache of the user (recommendation lists) forgets them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from interaction_recommender.deadletter.repository import DeadLetterRepository
from interaction_recommender.events.repository import delete_user_events
from interaction_recommender.features.repository import SnapshotRepository
from interaction_recommender.features.store import FeatureStore
from interaction_recommender.feedback.impressions import ImpressionLog
from interaction_recommender.feedback.repository import FeedbackRepository, ImpressionRepository
from interaction_recommender.outbox.repository import OutboxMessage, OutboxRepository
from interaction_recommender.storage.database import Database
from interaction_recommender.wire import utc_now

__all__ = ["UserCache", "UserErasure", "erase_user"]


class UserCache(Protocol):
    """Something that keeps per-user data outside the database (e.g. recommendation lists)."""

    async def forget(self, user_id: UUID) -> None: ...


class UserErasure:
    """DELETE /users/{id}: the erasure, then every cache forgets the user."""

    def __init__(
        self,
        database: Database,
        store: FeatureStore,
        *,
        features_topic: str,
        impressions: ImpressionLog | None,
        caches: Sequence[UserCache],
    ) -> None:
        self._database = database
        self._store = store
        self._features_topic = features_topic
        self._impressions = impressions
        self._caches = caches

    async def erase(self, user_id: UUID) -> datetime:
        erased_at = await erase_user(
            self._database,
            self._store,
            user_id,
            features_topic=self._features_topic,
            impressions=self._impressions,
        )
        for cache in self._caches:
            await cache.forget(user_id)
        return erased_at


async def erase_user(
    database: Database,
    store: FeatureStore,
    user_id: UUID,
    *,
    features_topic: str,
    impressions: ImpressionLog | None = None,
) -> datetime:
    now = utc_now()
    if impressions is not None:
        await impressions.forget_user(user_id)
    async with database.transaction() as conn:
        snapshot = SnapshotRepository(conn)
        await snapshot.lock_users([user_id])  # waits for a consumer write in flight
        await snapshot.mark_erased(user_id, now)
        await snapshot.delete(user_id)
        await delete_user_events(conn, user_id)
        await OutboxRepository(conn).delete_unsent(str(user_id))
        await DeadLetterRepository(conn).delete_user(user_id)
        await ImpressionRepository(conn).delete_user(user_id)
        await FeedbackRepository(conn).delete_user(user_id)
        await OutboxRepository(conn).add(
            [OutboxMessage(topic=features_topic, key=str(user_id), payload=None)], now
        )
    await store.erase(user_id)
    return now
