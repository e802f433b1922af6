"""All dead-letter SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.storage.tables import dead_letters

__all__ = ["ERROR_CHARS", "ERROR_TYPE_CHARS", "DeadLetter", "DeadLetterRepository"]

ERROR_CHARS = 1000  # of the error text kept (and put in the DLQ message)
ERROR_TYPE_CHARS = 200


@dataclass(frozen=True, slots=True)
class DeadLetter:
    consumer: str
    topic: str
    partition: int
    offset: int
    key: str | None
    payload: bytes | None
    error: str
    error_type: str
    attempts: int
    user_id: UUID | None
    sequence: int | None
    failed_at: datetime


class DeadLetterRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, letters: Sequence[DeadLetter]) -> list[int]:
        if not letters:
            return []
        result = await self._conn.execute(
            insert(dead_letters).returning(dead_letters.c.id),
            [
                {
                    "consumer": d.consumer,
                    "topic": d.topic,
                    "partition": d.partition,
                    "offset": d.offset,
                    "message_key": d.key,
                    "payload": d.payload,
                    "error": d.error[:ERROR_CHARS],
                    "error_type": d.error_type[:ERROR_TYPE_CHARS],
                    "attempts": d.attempts,
                    "user_id": d.user_id,
                    "sequence": d.sequence,
                    "failed_at": d.failed_at,
                }
                for d in letters
            ],
        )
        return [row.id for row in result.all()]

    async def recent(self, *, pending_only: bool, limit: int) -> list[Row[Any]]:
        query = select(dead_letters).order_by(dead_letters.c.id).limit(limit)
        if pending_only:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        return list((await self._conn.execute(query)).all())

    async def pending(self, ids: Sequence[int] | None) -> list[Row[Any]]:
        """Not yet replayed letters (all, or those ids), locked against a concurrent replay."""
        query = select(dead_letters).where(dead_letters.c.replayed_at.is_(None))
        if ids is not None:
            query = query.where(dead_letters.c.id.in_(ids))
        if self._conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list((await self._conn.execute(query.order_by(dead_letters.c.id))).all())

    async def mark_replayed(self, ids: Sequence[int], now: datetime) -> None:
        await self._conn.execute(
            update(dead_letters).where(dead_letters.c.id.in_(ids)).values(replayed_at=now)
        )

    async def count_pending(self) -> int:
        result = await self._conn.execute(
            select(func.count()).where(dead_letters.c.replayed_at.is_(None))
        )
        return int(result.scalar_one())

    async def delete_user(self, user_id: UUID) -> None:
        await self._conn.execute(delete(dead_letters).where(dead_letters.c.user_id == user_id))
