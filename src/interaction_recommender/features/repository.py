"""All SQL of the durable feature snapshot (`user_features`) and the erased-users list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import Integer, bindparam, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.events.messages import StoredEvent
from interaction_recommender.features.codec import decode, encode
from interaction_recommender.features.state import UserFeatures
from interaction_recommender.storage.erased import erased_among
from interaction_recommender.storage.tables import (
    erased_users,
    online_repairs,
    raw_events,
    user_features,
)

__all__ = ["SnapshotRepository", "unapplied_events"]

_FEATURE_LOCK_NAMESPACE = (
    4  # pg_advisory_xact_lock(4, hash32(userId)): writers of a user's features
)
_CHUNK = 500

_LOCK_USERS = text(
    "SELECT pg_advisory_xact_lock(:ns, k) FROM unnest(:keys) AS k ORDER BY k"
).bindparams(bindparam("keys", type_=postgresql.ARRAY(Integer)))


def _lock_key(user_id: UUID) -> int:
    return int.from_bytes(user_id.bytes[:4], "big", signed=True)


class SnapshotRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"
        self._insert = postgresql.insert if self._postgres else sqlite.insert

    async def lock_users(self, user_ids: Iterable[UUID]) -> None:
        """Serialize this transaction with every other writer of these users' features (the
        consumer and erasure), so an erasure can never be undone by a write in flight."""
        if not self._postgres:
            return  # one SQLite writer at a time anyway
        keys = sorted({_lock_key(u) for u in user_ids})
        if keys:
            await self._conn.execute(_LOCK_USERS, {"ns": _FEATURE_LOCK_NAMESPACE, "keys": keys})

    async def load_many(self, user_ids: Sequence[UUID]) -> dict[UUID, UserFeatures]:
        found: dict[UUID, UserFeatures] = {}
        for start in range(0, len(user_ids), _CHUNK):
            chunk = user_ids[start : start + _CHUNK]
            rows = await self._conn.execute(
                select(user_features.c.user_id, user_features.c.data).where(
                    user_features.c.user_id.in_(chunk)
                )
            )
            found.update((row.user_id, decode(row.data)) for row in rows)
        return found

    async def load_all(self) -> list[UserFeatures]:
        rows = await self._conn.execute(select(user_features.c.data))
        return [decode(row.data) for row in rows]

    async def save_many(
        self,
        features: Sequence[UserFeatures],
        now: datetime,
        encoded: Mapping[UUID, bytes] | None = None,
    ) -> set[UUID]:
        """Write each user's features if the stored version is exactly one below (or the user is
        new at version 1): compare-and-set. Returns the users whose write was refused (someone
        else wrote first: reload and apply again)."""
        written: set[UUID] = set()
        for start in range(0, len(features), _CHUNK):
            chunk = features[start : start + _CHUNK]
            statement = self._insert(user_features)
            upsert = statement.on_conflict_do_update(
                index_elements=[user_features.c.user_id],
                set_={
                    "version": statement.excluded.version,
                    "watermark": statement.excluded.watermark,
                    "data": statement.excluded.data,
                    "updated_at": statement.excluded.updated_at,
                },
                where=user_features.c.version == statement.excluded.version - 1,
            ).returning(user_features.c.user_id)
            rows = [
                {
                    "user_id": f.user_id,
                    "version": f.version,
                    "watermark": f.watermark,
                    "data": encoded[f.user_id] if encoded else encode(f),
                    "updated_at": now,
                }
                for f in chunk
            ]
            result = await self._conn.execute(upsert, rows)
            written.update(row.user_id for row in result.all())
        return {f.user_id for f in features} - written

    async def erased(self, user_ids: Sequence[UUID]) -> set[UUID]:
        return await erased_among(self._conn, user_ids)

    async def behind_online(self, user_ids: Sequence[UUID], now: datetime) -> None:
        """Their Redis write failed: remembered until a consumer writes them again."""
        statement = self._insert(online_repairs).values(
            [{"user_id": u, "failed_at": now} for u in user_ids]
        )
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id"], set_={"failed_at": statement.excluded.failed_at}
            )
        )

    async def to_repair(self, limit: int) -> list[UUID]:
        query = select(online_repairs.c.user_id).order_by(online_repairs.c.failed_at)
        return [row.user_id for row in await self._conn.execute(query.limit(limit))]

    async def repaired(self, user_ids: Sequence[UUID], read_at: datetime) -> None:
        """Written again from what the snapshot held at ``read_at``: a write that failed since
        (a later ``failed_at``) stays to be repaired."""
        await self._conn.execute(
            delete(online_repairs).where(
                online_repairs.c.user_id.in_(user_ids), online_repairs.c.failed_at <= read_at
            )
        )

    async def mark_erased(self, user_id: UUID, now: datetime) -> None:
        statement = self._insert(erased_users).values(user_id=user_id, erased_at=now)
        await self._conn.execute(statement.on_conflict_do_nothing(index_elements=["user_id"]))

    async def delete(self, user_id: UUID) -> None:
        await self._conn.execute(delete(user_features).where(user_features.c.user_id == user_id))
        await self._conn.execute(delete(online_repairs).where(online_repairs.c.user_id == user_id))


async def unapplied_events(conn: AsyncConnection) -> list[StoredEvent]:
    """Stored events past their user's snapshot watermark (every event of a user without a
    snapshot), erased users left out, in sequence order: what the feature consumer has not
    applied. The embedded mode publishes them again at start (its in-process log does not
    survive a stop)."""
    query = (
        select(raw_events)
        .outerjoin(user_features, user_features.c.user_id == raw_events.c.user_id)
        .where(
            raw_events.c.sequence > func.coalesce(user_features.c.watermark, -1),
            raw_events.c.user_id.not_in(select(erased_users.c.user_id)),
        )
        .order_by(raw_events.c.sequence)
    )
    return [StoredEvent.from_row(row) for row in await conn.execute(query)]
