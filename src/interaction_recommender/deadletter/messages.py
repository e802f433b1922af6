"""The `interaction_events_dlq` message of a dead letter, and the same document for the admin
API and the CLI (docs/topics.md)."""

from __future__ import annotations

import base64
import contextlib
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import Row

from interaction_recommender.bus.base import Record
from interaction_recommender.deadletter.repository import (
    ERROR_CHARS,
    ERROR_TYPE_CHARS,
    DeadLetter,
)
from interaction_recommender.outbox.repository import SetAsideRow

__all__ = [
    "ENVELOPE_ROOM",
    "SCHEMA_VERSION",
    "claimed_identity",
    "dead_letter_document",
    "dead_letter_message",
    "max_original_bytes",
    "set_aside_document",
]

SCHEMA_VERSION = 2  # 2: the original is always base64, so the envelope's size is computable

ENVELOPE_ROOM = 16 * 1024
"""Bytes a dead-letter message needs besides its base64 original: every other field at its
largest (an error of 1,000 characters that JSON escapes six-fold, a 249-character topic), the
Kafka key and the record overhead. tests/outbox/test_oversized.py builds that worst case."""


def max_original_bytes(max_request_size: int) -> int:
    """The largest message that can still be dead-lettered by a producer limited to
    ``max_request_size``: base64 takes 4 bytes per 3. Ingest refuses larger events."""
    return (max_request_size - ENVELOPE_ROOM) * 3 // 4


def dead_letter_document(row: Row[Any]) -> dict[str, Any]:
    """A stored letter for the admin API and the CLI."""
    return dead_letter_message(row.id, _letter(row)) | {"replayedAt": row.replayed_at}


def set_aside_document(row: SetAsideRow) -> dict[str, Any]:
    """An outbox row the bus refused for good, for the admin API and the CLI."""
    return {
        "outboxId": row.id,
        "topic": row.topic,
        "key": row.key,
        "sizeBytes": row.size_bytes,
        "reason": row.reason,
        "createdAt": row.created_at,
        "setAsideAt": row.set_aside_at,
    }


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


def dead_letter_message(letter_id: int, letter: DeadLetter) -> dict[str, Any]:
    """The `interaction_events_dlq` message (docs/topics.md): the original message in base64
    (one encoding, so that its size is known in advance), where it came from and why it failed."""
    original: dict[str, Any] = {"encoding": "none", "value": None}
    if letter.payload is not None:
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
        "error": letter.error[:ERROR_CHARS],
        "errorType": letter.error_type[:ERROR_TYPE_CHARS],
        "attempts": letter.attempts,
        "userId": letter.user_id,
        "sequence": letter.sequence,
        "failedAt": letter.failed_at,
    }


def claimed_identity(record: Record) -> tuple[UUID | None, int | None]:
    """The user and sequence a message claims (its body, else its key), as far as they can be
    read: for listing and erasing dead letters, never trusted for any state."""
    user_id: UUID | None = None
    sequence: int | None = None
    body: Any = None
    with contextlib.suppress(orjson.JSONDecodeError):
        body = orjson.loads(record.value) if record.value is not None else None
    if isinstance(body, dict):
        if isinstance(body.get("sequence"), int) and -(2**63) <= body["sequence"] < 2**63:
            sequence = body["sequence"]
        raw_user = body.get("userId")
        if isinstance(raw_user, str):
            user_id = _uuid_or_none(raw_user)
    if user_id is None and record.key is not None:
        user_id = _uuid_or_none(record.key.decode(errors="replace"))
    return user_id, sequence


def _uuid_or_none(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None
