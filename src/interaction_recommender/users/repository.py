"""All SQL of erasure jobs: the `erasures` audit rows and the `erased_users` pointer to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.storage.tables import erased_users, erasures

__all__ = ["ErasureRecord", "ErasureRepository"]


@dataclass(frozen=True)
class ErasureRecord:
    erasure_id: UUID
    status: str
    steps: dict[str, dict[str, Any]]
    requested_at: datetime
    next_attempt_at: datetime
    completed_at: datetime | None
    user_id: UUID | None  # from erased_users; None once nothing points at this job any more


class ErasureRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    async def add(self, user_id: UUID, record: ErasureRecord) -> None:
        """The job and the user's suppression entry, pointing at it (a repeated erasure points
        the user at the new job)."""
        await self._conn.execute(
            erasures.insert().values(
                erasure_id=record.erasure_id,
                status=record.status,
                steps=record.steps,
                requested_at=record.requested_at,
                next_attempt_at=record.next_attempt_at,
                completed_at=None,
            )
        )
        upsert = self._insert(erased_users).values(
            user_id=user_id, erased_at=record.requested_at, erasure_id=record.erasure_id
        )
        await self._conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["user_id"], set_={"erasure_id": record.erasure_id}
            )
        )

    async def of_user(self, user_id: UUID) -> ErasureRecord | None:
        query = (
            select(erasures, erased_users.c.user_id)
            .join(erased_users, erased_users.c.erasure_id == erasures.c.erasure_id)
            .where(erased_users.c.user_id == user_id)
        )
        row = (await self._conn.execute(query)).one_or_none()
        return _record(row) if row is not None else None

    async def due(self, now: datetime, limit: int) -> list[ErasureRecord]:
        """Pending jobs whose next attempt is due, oldest first, with their user."""
        query = (
            select(erasures, erased_users.c.user_id)
            .outerjoin(erased_users, erased_users.c.erasure_id == erasures.c.erasure_id)
            .where(erasures.c.status == "pending", erasures.c.next_attempt_at <= now)
            .order_by(erasures.c.requested_at)
            .limit(limit)
        )
        return [_record(row) for row in (await self._conn.execute(query)).all()]

    async def save(self, record: ErasureRecord) -> None:
        await self._conn.execute(
            update(erasures)
            .where(erasures.c.erasure_id == record.erasure_id)
            .values(
                status=record.status,
                steps=record.steps,
                next_attempt_at=record.next_attempt_at,
                completed_at=record.completed_at,
            )
        )

    async def oldest_pending(self) -> datetime | None:
        query = select(erasures.c.requested_at).where(erasures.c.status == "pending")
        row = (await self._conn.execute(query.order_by(erasures.c.requested_at).limit(1))).first()
        return row.requested_at if row is not None else None


def _record(row: Any) -> ErasureRecord:
    return ErasureRecord(
        erasure_id=row.erasure_id,
        status=row.status,
        steps=dict(row.steps),
        requested_at=row.requested_at,
        next_attempt_at=row.next_attempt_at,
        completed_at=row.completed_at,
        user_id=row.user_id,
    )
