"""Reading and refreshing a user's features."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import structlog

from interaction_recommender.catalog.cache import CatalogCache
from interaction_recommender.errors import NotFound, ServiceUnavailable, is_dependency_failure
from interaction_recommender.events.repository import (
    user_event_messages,
    user_has_events,
    user_max_sequence,
)
from interaction_recommender.features.extractor import build_features
from interaction_recommender.features.repository import SnapshotRepository
from interaction_recommender.features.state import (
    DEFAULT_CONFIG,
    FeatureConfig,
    UserFeatures,
    new_features,
)
from interaction_recommender.features.store import FeatureStore
from interaction_recommender.storage.database import Database
from interaction_recommender.wire import utc_now

__all__ = ["FeatureService"]

log = structlog.get_logger(__name__)


@dataclass
class FeatureService:
    database: Database
    store: FeatureStore
    catalog: CatalogCache
    config: FeatureConfig = DEFAULT_CONFIG

    async def get(self, user_id: UUID) -> UserFeatures:
        """The online store, else the snapshot (and the online store is repaired), else empty
        features for a user whose events are stored but not processed yet; NotFound for a user
        with no stored events at all."""
        try:
            online = await self.store.get_many([user_id])
        except Exception as exc:
            if not is_dependency_failure(exc):
                raise
            log.warning("online_features_unavailable", error=type(exc).__name__)
            online = {}  # the snapshot in the database answers instead
        if user_id in online:
            return online[user_id]
        async with self.database.transaction() as conn:
            snapshot = await SnapshotRepository(conn).load_many([user_id])
            if user_id not in snapshot and not await user_has_events(conn, user_id):
                raise NotFound("No events are stored for this user.")
        if user_id in snapshot:
            try:
                await self.store.put_many([snapshot[user_id]])
            except Exception as exc:  # the repair can wait for the next read
                if not is_dependency_failure(exc):
                    raise
            return snapshot[user_id]
        return new_features(user_id)

    async def refresh(self, user_id: UUID, days_back: int) -> UserFeatures:
        """Recompute from the stored events of the last ``days_back`` days and replace both
        stores. The watermark covers every stored event of the user (older ones are left out on
        purpose), so the consumer skips whatever this refresh already includes."""
        since = utc_now() - timedelta(days=days_back)
        async with self.database.transaction() as conn:
            snapshot = SnapshotRepository(conn)
            await snapshot.lock_users([user_id])  # the consumer waits until this one is stored
            if await snapshot.erased([user_id]):
                raise NotFound("This user was erased.")
            newest = await user_max_sequence(conn, user_id)
            if newest is None:
                raise NotFound("No events are stored for this user.")
            events = await user_event_messages(conn, user_id, since=since)
            current = (await snapshot.load_many([user_id])).get(user_id)
            built = build_features(
                user_id,
                [(e, self.catalog.get(e.movie_id) if e.movie_id else None) for e in events],
                self.config,
            )
            built.watermark = max(built.watermark, newest)
            if current is not None:
                # Dead letters outside the rebuilt events are still pending: a replay applies them.
                rebuilt = {e.sequence for e in events}
                built.dead_lettered = {s for s in current.dead_lettered if s not in rebuilt}
            built.version = (current.version if current else 0) + 1
            if await snapshot.save_many([built], utc_now()):
                raise ServiceUnavailable("The features changed concurrently; retry.")
        await self.store.put_many([built])
        return built
