"""Recording dead letters and replaying them, in the caller's transaction (outbox writes);
``DeadLetterService`` is the admin routes' unit of work around them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.bus.base import Record
from interaction_recommender.bus.consumer import PoisonHandler
from interaction_recommender.bus.topics import retry_topic
from interaction_recommender.deadletter.messages import claimed_identity, dead_letter_message
from interaction_recommender.deadletter.repository import DeadLetter, DeadLetterRepository
from interaction_recommender.outbox.repository import OutboxMessage, OutboxRepository, SetAsideRow
from interaction_recommender.storage.database import Database
from interaction_recommender.storage.erased import erased_among
from interaction_recommender.wire import dumps, utc_now

__all__ = ["DeadLetterListing", "DeadLetterService", "poison_letter", "record", "replay"]


@dataclass(frozen=True)
class DeadLetterListing:
    letters: list[Row[Any]]
    pending: int
    set_aside: list[SetAsideRow]
    """Outbox rows the bus refused for good (outbox/relay.py): messages we could not send."""
    set_aside_count: int


class DeadLetterService:
    """GET /admin/dlq and POST /admin/dlq/replay: one transaction per call."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def listing(self, *, pending_only: bool, limit: int) -> DeadLetterListing:
        """The letters (oldest first), how many are still pending, and the set-aside rows."""
        async with self._database.transaction() as conn:
            repo = DeadLetterRepository(conn)
            outbox = OutboxRepository(conn)
            return DeadLetterListing(
                letters=await repo.recent(pending_only=pending_only, limit=limit),
                pending=await repo.count_pending(),
                set_aside=await outbox.set_aside_rows(limit),
                set_aside_count=await outbox.count_set_aside(),
            )

    async def replay(self, ids: Sequence[int] | None) -> list[int]:
        async with self._database.transaction() as conn:
            return await replay(conn, ids)

    def poison_handler(self, consumer: str, *, dlq_topic: str) -> PoisonHandler:
        """What a consumer loop calls for a record it isolated and keeps failing on."""

        async def keep(message: Record, error: BaseException, attempts: int) -> None:
            letter = poison_letter(consumer, message, error, attempts)
            async with self._database.transaction() as conn:
                if letter.user_id is not None and await erased_among(conn, [letter.user_id]):
                    return  # an erased user's message is dropped, not kept
                await record(conn, [letter], dlq_topic=dlq_topic)

        return keep


def poison_letter(consumer: str, record: Record, error: BaseException, attempts: int) -> DeadLetter:
    """The dead letter of a record ``consumer`` gave up on (its user and sequence as claimed)."""
    user_id, sequence = claimed_identity(record)
    return DeadLetter(
        consumer=consumer,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode(errors="replace") if record.key is not None else None,
        payload=record.value,
        error=str(error) or type(error).__name__,
        error_type=type(error).__name__,
        attempts=attempts,
        user_id=user_id,
        sequence=sequence,
        failed_at=utc_now(),
    )


async def record(conn: AsyncConnection, letters: Sequence[DeadLetter], *, dlq_topic: str) -> None:
    """Keep the letters and publish each to the DLQ topic (same transaction: both or neither)."""
    ids = await DeadLetterRepository(conn).add(letters)
    messages = [
        OutboxMessage(
            topic=dlq_topic,
            key=letter.key,
            payload=dumps(dead_letter_message(letter_id, letter)),
        )
        for letter_id, letter in zip(ids, letters, strict=True)
    ]
    await OutboxRepository(conn).add(messages, utc_now())


async def replay(conn: AsyncConnection, ids: Sequence[int] | None) -> list[int]:
    """Re-inject the original messages (same key and value) into the retry topic of the group
    that failed (bus/topics.py), so that only that group reads them again, and mark them
    replayed; the feature consumer applies each exactly once (features/extractor.py:
    dead-lettered sequences). Returns the ids replayed."""
    repo = DeadLetterRepository(conn)
    letters = await repo.pending(ids)
    await OutboxRepository(conn).add(
        [
            OutboxMessage(
                topic=retry_topic(row.topic, row.consumer),
                key=row.message_key,
                payload=row.payload,
            )
            for row in letters
        ],
        utc_now(),
    )
    replayed = [row.id for row in letters]
    await repo.mark_replayed(replayed, utc_now())
    return replayed
