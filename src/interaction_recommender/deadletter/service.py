"""Recording dead letters and replaying them, in the caller's transaction (outbox writes);
``DeadLetterService`` is the admin routes' unit of work around them."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.deadletter.repository import DeadLetter, DeadLetterRepository
from interaction_recommender.outbox.repository import OutboxMessage, OutboxRepository
from interaction_recommender.storage.database import Database
from interaction_recommender.wire import dumps, utc_now

__all__ = ["SCHEMA_VERSION", "DeadLetterService", "dead_letter_document", "record", "replay"]

SCHEMA_VERSION = 1


class DeadLetterService:
    """GET /admin/dlq and POST /admin/dlq/replay: one transaction per call."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def listing(self, *, pending_only: bool, limit: int) -> dict[str, Any]:
        async with self._database.transaction() as conn:
            repo = DeadLetterRepository(conn)
            rows = await repo.recent(pending_only=pending_only, limit=limit)
            pending = await repo.count_pending()
        return {
            "deadLetters": [dead_letter_document(row) for row in rows],
            "pendingCount": pending,
        }

    async def replay(self, ids: Sequence[int] | None) -> list[int]:
        async with self._database.transaction() as conn:
            return await replay(conn, ids)


async def record(conn: AsyncConnection, letters: Sequence[DeadLetter], *, dlq_topic: str) -> None:
    """Keep the letters and publish each to the DLQ topic (same transaction: both or neither)."""
    ids = await DeadLetterRepository(conn).add(letters)
    messages = [
        OutboxMessage(
            topic=dlq_topic,
            key=letter.key,
            payload=dumps(_document(letter_id, letter)),
        )
        for letter_id, letter in zip(ids, letters, strict=True)
    ]
    await OutboxRepository(conn).add(messages, utc_now())


async def replay(conn: AsyncConnection, ids: Sequence[int] | None) -> list[int]:
    """Re-inject the original messages (same key and value) into their topic and mark them
    replayed; the consumer applies each exactly once (features/extractor.py: dead-lettered
    sequences). Returns the ids replayed."""
    repo = DeadLetterRepository(conn)
    letters = await repo.pending(ids)
    await OutboxRepository(conn).add(
        [
            OutboxMessage(topic=row.topic, key=row.message_key, payload=row.payload)
            for row in letters
        ],
        utc_now(),
    )
    replayed = [row.id for row in letters]
    await repo.mark_replayed(replayed, utc_now())
    return replayed


def dead_letter_document(row: Row[Any]) -> dict[str, Any]:
    """A stored letter for the admin API and the CLI."""
    return _document(row.id, _letter(row)) | {"replayedAt": row.replayed_at}


def _letter(row: Row[Any]) -> DeadLetter:
    return DeadLetter(
        consumer=row.consumer,
        topic=row.topic,
        partition=row.partition,
        offset=row.offset,
        key=row.message_key,
        payload=row.payload,
        error=row.error,
        error_type=row.error_type,
        attempts=row.attempts,
        user_id=row.user_id,
        sequence=row.sequence,
        failed_at=row.failed_at,
    )


def _document(letter_id: int, letter: DeadLetter) -> dict[str, Any]:
    """The `interaction_events_dlq` message (docs/topics.md): the original message as text when
    it is UTF-8, else base64, plus where it came from and why it failed."""
    original: dict[str, Any] = {"encoding": "none", "value": None}
    if letter.payload is not None:
        try:
            original = {"encoding": "utf-8", "value": letter.payload.decode()}
        except UnicodeDecodeError:
            original = {"encoding": "base64", "value": base64.b64encode(letter.payload).decode()}
    return {
        "schemaVersion": SCHEMA_VERSION,
        "deadLetterId": letter_id,
        "consumer": letter.consumer,
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "key": letter.key,
        "original": original,
        "error": letter.error,
        "errorType": letter.error_type,
        "attempts": letter.attempts,
        "userId": letter.user_id,
        "sequence": letter.sequence,
        "failedAt": letter.failed_at,
    }
