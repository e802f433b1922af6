"""A demo world as the training pipeline reads it: event messages (as if stored and published)
and catalog movies, without a database (`recommender create-sample-model`, benchmarks)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.catalog.schemas import MovieBatchItem
from interaction_recommender.demo.world import World
from interaction_recommender.events.messages import SCHEMA_VERSION, EventMessage
from interaction_recommender.events.schemas import NewEvent, parse_batch_item

__all__ = ["event_message", "world_catalog", "world_events"]


def world_events(world: World) -> list[EventMessage]:
    """The world's events in arrival order, sequence numbers from 1, validated exactly as the API
    validates them."""
    return [event_message(raw, sequence) for sequence, raw in enumerate(world.events, start=1)]


def event_message(raw: dict[str, Any], sequence: int) -> EventMessage:
    """One wire event as the store would publish it with this sequence number (server time =
    client time, so that a replay of a world is deterministic)."""
    event = parse_batch_item(raw)
    if not isinstance(event, NewEvent):
        raise ValueError(f"demo event rejected: {event}")
    when = event.client_timestamp or datetime.now(UTC)
    return EventMessage.model_construct(
        schema_version=SCHEMA_VERSION,
        event_id=uuid.UUID(int=sequence, version=4),
        sequence=sequence,
        request_id=event.request_id,
        event_type=event.event_type,
        user_id=event.user_id,
        movie_id=event.movie_id,
        client_timestamp=when,
        server_timestamp=when,
        metadata=event.metadata,
    )


def world_catalog(world: World) -> list[CatalogMovie]:
    movies = []
    for raw in world.movies:
        item = MovieBatchItem.model_validate(raw)
        movies.append(
            CatalogMovie(
                movie_id=item.movie_id,
                title=item.title,
                genres=tuple(item.genres or ()),
                release_year=item.release_year,
                release_date=item.release_date,
                duration_minutes=item.duration_minutes,
                minimum_age=item.minimum_age,
                country=item.country,
                available=item.available if item.available is not None else True,
                tags=tuple(item.tags or ()),
                source="demo",
                updated_at=datetime(2000, 1, 1, tzinfo=UTC),
            )
        )
    return movies
