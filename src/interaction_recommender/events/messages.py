"""The `interaction_events` message: built from a stored event, decoded by consumers.
Schema documented in docs/topics.md; bump SCHEMA_VERSION on any incompatible change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import Field

from interaction_recommender.events.schemas import EventType
from interaction_recommender.outbox.repository import OutboxMessage
from interaction_recommender.wire import Instant, WireModel

__all__ = [
    "SCHEMA_VERSION",
    "EventMessage",
    "StoredEvent",
    "decode_event_message",
    "message_size_bound",
]

SCHEMA_VERSION = 1

# orjson writes UUIDs as strings and aware datetimes as ISO-8601 with "Z" for UTC.
_ORJSON_OPTIONS = orjson.OPT_UTC_Z


@dataclass(slots=True)
class StoredEvent:
    """A row of raw_events. Mutable only so that a store can fill in the ``sequence`` the
    database drew without copying the row (a copy per event showed up in batch profiles)."""

    sequence: int
    event_id: UUID
    request_id: UUID
    event_type: str
    user_id: UUID
    movie_id: UUID | None
    client_timestamp: datetime
    server_timestamp: datetime
    metadata: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> StoredEvent:
        """A `raw_events` row (any object with its columns as attributes)."""
        return cls(
            sequence=row.sequence,
            event_id=row.event_id,
            request_id=row.request_id,
            event_type=row.event_type,
            user_id=row.user_id,
            movie_id=row.movie_id,
            client_timestamp=row.client_timestamp,
            server_timestamp=row.server_timestamp,
            metadata=row.metadata,
        )

    def to_message(self, topic: str) -> OutboxMessage:
        head, tail = self.message_parts()
        return OutboxMessage(
            topic=topic, key=str(self.user_id), payload=head + str(self.sequence).encode() + tail
        )

    def message_parts(self) -> tuple[bytes, bytes]:
        """The message around its sequence number: ``head + b"<sequence>" + tail``. Postgres
        splices in the sequence it draws inside the INSERT (store_postgres.py), so one statement
        stores the event and its message; SQLite and tests use ``to_message``."""
        head = {
            "schemaVersion": SCHEMA_VERSION,
            "eventId": self.event_id,
        }
        tail = {
            "requestId": self.request_id,
            "eventType": self.event_type,
            "userId": self.user_id,
            "movieId": self.movie_id,
            "clientTimestamp": self.client_timestamp,
            "serverTimestamp": self.server_timestamp,
            "metadata": self.metadata,
        }
        head_json = orjson.dumps(head, option=_ORJSON_OPTIONS)
        tail_json = orjson.dumps(tail, option=_ORJSON_OPTIONS)
        return head_json[:-1] + b',"sequence":', b"," + tail_json[1:]


def _fixed_part() -> int:
    """Bytes of a message besides its metadata, every field at its widest (a 19-digit sequence,
    a movie id, microseconds in both timestamps)."""
    widest = datetime(2000, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC)
    some_id = UUID(int=0)
    event = StoredEvent(
        sequence=-(2**63),
        event_id=some_id,
        request_id=some_id,
        event_type=max((t.value for t in EventType), key=len),
        user_id=some_id,
        movie_id=some_id,
        client_timestamp=widest,
        server_timestamp=widest,
        metadata={},
    )
    message = event.to_message("topic").payload
    assert message is not None
    return len(message) - len(b"{}")


_FIXED_PART = _fixed_part()


def message_size_bound(metadata: dict[str, Any]) -> int:
    """The most bytes the message of an event with this metadata can take (its sequence is drawn
    at commit): what ingest compares with the size limit."""
    return _FIXED_PART + len(orjson.dumps(metadata, option=_ORJSON_OPTIONS))


class EventMessage(WireModel):
    """A decoded `interaction_events` message (what consumers validate)."""

    schema_version: int = Field(ge=1)
    event_id: UUID
    sequence: int
    request_id: UUID
    event_type: EventType
    user_id: UUID
    movie_id: UUID | None
    client_timestamp: Instant  # an offset is required: a naive time is not our message
    server_timestamp: Instant
    metadata: dict[str, Any]


def decode_event_message(value: bytes) -> EventMessage:
    """Raises ValueError (pydantic.ValidationError) for anything that is not a known event."""
    message = EventMessage.model_validate_json(value)
    if message.schema_version != SCHEMA_VERSION:
        raise ValueError(f"unsupported schemaVersion {message.schema_version}")
    return message
