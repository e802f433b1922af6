"""The `interaction_events_dlq` message of a dead letter, and the same document for the admin
API and the CLI (docs/topics.md)."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import Row

from interaction_recommender.deadletter.repository import DeadLetter

__all__ = ["SCHEMA_VERSION", "dead_letter_document", "dead_letter_message"]

SCHEMA_VERSION = 1


def dead_letter_document(row: Row[Any]) -> dict[str, Any]:
    """A stored letter for the admin API and the CLI."""
    return dead_letter_message(row.id, _letter(row)) | {"replayedAt": row.replayed_at}


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
