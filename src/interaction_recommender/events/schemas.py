"""Wire schemas of the event API (docs/contract.md: camelCase, nulls and missing keys alike, unknown
keys ignored; every metadata key optional and nullable except a search's ``query``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import Field, ValidationError

from interaction_recommender.errors import validation_details
from interaction_recommender.wire import (
    FreeText,
    Identifier,
    Instant,
    JsonObject,
    Label,
    UtcTimestamp,
    WireModel,
)

__all__ = [
    "MAX_BATCH_EVENTS",
    "BatchItemResult",
    "BatchRequest",
    "BatchResponse",
    "EventResponse",
    "EventType",
    "FavoriteEvent",
    "NewEvent",
    "RatingEvent",
    "SearchEvent",
    "WatchEvent",
    "WireEvent",
    "parse_batch_item",
]

MAX_BATCH_EVENTS = 1000
_JAVA_INT_MAX = 2**31 - 1


class EventType(StrEnum):
    WATCH = "watch"
    SEARCH = "search"
    RATING = "rating"
    FAVORITE = "favorite"


# --- metadata, per type -------------------------------------------------------------------------
class WatchMetadata(WireModel):
    watch_duration: int | None = Field(
        default=None,
        ge=0,
        le=_JAVA_INT_MAX,
        description="Seconds. The platform sometimes sends the movie's length here instead.",
    )
    device: Label | None = None
    quality: Label | None = None
    session_id: Identifier | None = None
    progress_percent: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)


class SearchMetadata(WireModel):
    query: FreeText
    results_count: int | None = Field(default=None, ge=0, le=_JAVA_INT_MAX)
    filters: JsonObject | None = None
    session_id: Identifier | None = None


class RatingMetadata(WireModel):
    rating: float | None = Field(default=None, ge=0.5, le=5.0, allow_inf_nan=False)
    previous_rating: float | None = Field(default=None, ge=0.5, le=5.0, allow_inf_nan=False)


class FavoriteMetadata(WireModel):
    action: Literal["add", "remove"] | None = None
    list_id: Identifier | None = None


# --- events --------------------------------------------------------------------------------------
class _EventBase(WireModel):
    request_id: UUID | None = Field(
        default=None,
        description="Idempotency key: fresh per logical event, the same on every retry. "
        "Generated when missing.",
    )
    user_id: UUID
    client_timestamp: Instant | None = Field(
        default=None, description="ISO-8601 instant with offset; the server time when missing."
    )


class WatchEvent(_EventBase):
    movie_id: UUID
    metadata: WatchMetadata | None = None


class SearchEvent(_EventBase):
    movie_id: UUID | None = None
    metadata: SearchMetadata


class RatingEvent(_EventBase):
    movie_id: UUID
    metadata: RatingMetadata | None = None


class FavoriteEvent(_EventBase):
    movie_id: UUID
    metadata: FavoriteMetadata | None = None


WireEvent = WatchEvent | SearchEvent | RatingEvent | FavoriteEvent

MODEL_BY_TYPE: dict[EventType, type[WireEvent]] = {
    EventType.WATCH: WatchEvent,
    EventType.SEARCH: SearchEvent,
    EventType.RATING: RatingEvent,
    EventType.FAVORITE: FavoriteEvent,
}


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A validated event on its way into storage."""

    request_id: UUID
    event_type: EventType
    user_id: UUID
    movie_id: UUID | None
    client_timestamp: datetime | None
    metadata: dict[str, Any]

    @classmethod
    def from_wire(cls, event_type: EventType, event: WireEvent) -> NewEvent:
        metadata = (
            event.metadata.model_dump(mode="json", by_alias=True, exclude_none=True)
            if event.metadata is not None
            else {}
        )
        return cls(
            request_id=event.request_id or uuid4(),
            event_type=event_type,
            user_id=event.user_id,
            movie_id=event.movie_id,
            client_timestamp=event.client_timestamp,
            metadata=metadata,
        )


# --- responses -----------------------------------------------------------------------------------
class EventResponse(WireModel):
    request_id: UUID
    event_id: UUID
    status: Literal["accepted", "duplicate"]
    server_timestamp: UtcTimestamp


class BatchRequest(WireModel):
    events: list[Any] = Field(
        max_length=MAX_BATCH_EVENTS,
        description='Each item is a single event plus "type": watch|search|rating|favorite.',
    )


class BatchItemResult(WireModel):
    index: int
    request_id: UUID | None = None
    status: Literal["accepted", "duplicate", "rejected"]
    event_id: UUID | None = None
    server_timestamp: UtcTimestamp | None = None
    error: str | None = None


class BatchResponse(WireModel):
    results: list[BatchItemResult]
    accepted: int
    duplicates: int
    rejected: int


def parse_batch_item(raw: Any) -> NewEvent | str:
    """A batch item (a single event plus "type") as a NewEvent, or a short reason it was
    rejected (values are never echoed: they may be personal data)."""
    if not isinstance(raw, dict):
        return "each event must be a JSON object"
    try:
        event_type = EventType(str(raw.get("type")).lower())
    except ValueError:
        return "type must be one of: watch, search, rating, favorite"
    try:
        event = MODEL_BY_TYPE[event_type].model_validate(raw)
    except ValidationError as exc:
        return "; ".join(f"{d['field']}: {d['message']}" for d in validation_details(exc.errors()))
    return NewEvent.from_wire(event_type, event)
