"""The `interaction_events` message: built from a stored event, decoded by consumers.
Schema documented in docs/topics.md; bump SCHEMA_VERSION on any incompatible change."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from pydantic import Field

from interaction_recommender.events.schemas import EventType
from interaction_recommender.outbox.repository import OutboxMessage
from interaction_recommender.wire import UtcTimestamp, WireModel

__all__ = ["SCHEMA_VERSION", "EventMessage", "StoredEvent", "decode_event_message"]

SCHEMA_VERSION = 1


class StoredEvent(WireModel):
    """A row of raw_events; also the body of its Kafka message."""

    event_id: UUID
    sequence: int
    request_id: UUID
    event_type: EventType
    user_id: UUID
    movie_id: UUID | None
    client_timestamp: UtcTimestamp
    server_timestamp: UtcTimestamp
    metadata: dict[str, Any]

    def to_message(self, topic: str) -> OutboxMessage:
        body = self.model_dump(mode="json", by_alias=True)
        body["schemaVersion"] = SCHEMA_VERSION
        return OutboxMessage(topic=topic, key=str(self.user_id), payload=orjson.dumps(body))


class EventMessage(StoredEvent):
    schema_version: int = Field(ge=1)


def decode_event_message(value: bytes) -> EventMessage:
    """Raises ValueError (pydantic.ValidationError) for anything that is not a known event."""
    message = EventMessage.model_validate_json(value)
    if message.schema_version != SCHEMA_VERSION:
        raise ValueError(f"unsupported schemaVersion {message.schema_version}")
    return message
