"""All outbox SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.storage.database import Database, notify_after_commit
from interaction_recommender.storage.tables import outbox

__all__ = [
    "OUTBOX_CHANNEL",
    "ClaimedMessage",
    "OutboxMessage",
    "OutboxRepository",
    "SetAsideRow",
    "outbox_committed",
]

OUTBOX_CHANNEL = "outbox"
"""Post-commit notification (storage/database.py) of every transaction that wrote outbox rows:
the relay listens to it and publishes at once instead of at its next idle poll."""

# (namespace, key) of the advisory lock that makes one relay active at a time (Postgres only).
_RELAY_LOCK = (2, 0)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    topic: str
    key: str | None
    payload: bytes | None  # None: a tombstone (a Kafka message with a null value)


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    id: int
    topic: str
    key: str | None
    payload: bytes | None  # None: a tombstone (a Kafka message with a null value)


@dataclass(frozen=True, slots=True)
class SetAsideRow:
    """A message the bus refused for good: kept for an operator, never published."""

    id: int
    topic: str
    key: str | None
    size_bytes: int
    reason: str
    created_at: datetime
    set_aside_at: datetime


_PENDING = outbox.c.sent_at.is_(None) & outbox.c.set_aside_at.is_(None)


def outbox_committed(database: Database) -> None:
    """For a write that committed outbox rows outside ``Database.transaction`` (the asyncpg
    ingest statement): wake the relay now. Every other write is announced by ``add``."""
    database.notify(OUTBOX_CHANNEL)


class OutboxRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"

    async def add(self, messages: Sequence[OutboxMessage], now: datetime) -> None:
        if not messages:
            return
        # Rows are inserted in list order, so ids follow it: callers pass messages in the order
        # they must be published.
        await self._conn.execute(
            insert(outbox),
            [
                {"topic": m.topic, "message_key": m.key, "payload": m.payload, "created_at": now}
                for m in messages
            ],
        )
        notify_after_commit(self._conn, OUTBOX_CHANNEL)

    async def try_become_relay(self) -> bool:
        """Only one relay publishes at a time (lock held until this transaction ends), so
        batches reach the bus in id order even with many replicas. SQLite: one process."""
        if not self._postgres:
            return True
        result = await self._conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:ns, :key)"),
            {"ns": _RELAY_LOCK[0], "key": _RELAY_LOCK[1]},
        )
        return bool(result.scalar_one())

    async def claim_batch(self, limit: int) -> list[ClaimedMessage]:
        query = (
            select(outbox.c.id, outbox.c.topic, outbox.c.message_key, outbox.c.payload)
            .where(_PENDING)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        rows = (await self._conn.execute(query)).all()
        return [ClaimedMessage(r.id, r.topic, r.message_key, r.payload) for r in rows]

    async def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        """Sent rows keep no payload and no key (the user id): they are only counted until the
        retention deletes them, and an erasure has nothing left to find in them."""
        await self._conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(ids))
            .values(sent_at=now, payload=None, message_key=None)
        )

    async def set_aside(self, reasons: dict[int, str], now: datetime) -> None:
        """Rows the bus refused for good: out of the relay's way, kept for an operator."""
        for row_id, reason in reasons.items():
            await self._conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(set_aside_at=now, set_aside_reason=reason[:300])
            )

    async def set_aside_rows(self, limit: int) -> list[SetAsideRow]:
        size = func.coalesce(func.length(outbox.c.payload), 0)
        rows = await self._conn.execute(
            select(
                outbox.c.id,
                outbox.c.topic,
                outbox.c.message_key,
                size.label("size"),
                outbox.c.set_aside_reason,
                outbox.c.created_at,
                outbox.c.set_aside_at,
            )
            .where(outbox.c.set_aside_at.is_not(None))
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return [
            SetAsideRow(
                r.id,
                r.topic,
                r.message_key,
                int(r.size),
                r.set_aside_reason or "",
                r.created_at,
                r.set_aside_at,
            )
            for r in rows
        ]

    async def count_set_aside(self) -> int:
        result = await self._conn.execute(
            select(func.count()).where(outbox.c.set_aside_at.is_not(None))
        )
        return int(result.scalar_one())

    async def delete_unsent(self, key: str) -> None:
        """Erasure: the messages of ``key`` (a user id) that were not published yet."""
        await self._conn.execute(
            delete(outbox).where(outbox.c.sent_at.is_(None), outbox.c.message_key == key)
        )

    async def delete_sent_before(self, cutoff: datetime, limit: int) -> int:
        """Delete at most ``limit`` rows sent before ``cutoff`` (storage/retention.py)."""
        expired = (
            select(outbox.c.id)
            .where(outbox.c.sent_at.is_not(None), outbox.c.sent_at < cutoff)
            .limit(limit)
        )
        result = await self._conn.execute(delete(outbox).where(outbox.c.id.in_(expired)))
        return int(result.rowcount or 0)

    async def backlog(self) -> tuple[int, datetime | None]:
        """Rows waiting to be published (set-aside ones wait for nobody) and the creation time
        of the oldest one."""
        row = (
            await self._conn.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(_PENDING)
            )
        ).one()
        return int(row[0]), row[1]
