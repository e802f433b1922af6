"""Loads a demo world into a fresh service through the same paths as the API: the movies through
the catalog upsert, the events through the event store's batch ingest (raw events + outbox), so
every later stage sees them as real events."""

from __future__ import annotations

import structlog

from interaction_recommender.catalog.repository import CatalogRepository
from interaction_recommender.catalog.schemas import MovieBatchItem
from interaction_recommender.catalog.service import upsert_movies
from interaction_recommender.demo.world import World
from interaction_recommender.events.repository import any_event_stored
from interaction_recommender.events.schemas import NewEvent, parse_batch_item
from interaction_recommender.events.store import EventStore
from interaction_recommender.storage.database import Database

__all__ = ["database_is_empty", "load_world"]

log = structlog.get_logger(__name__)

_EVENT_BATCH = 1000  # the batch API's limit
_MOVIE_BATCH = 5000


async def database_is_empty(database: Database) -> bool:
    async with database.transaction() as conn:
        has_events = await any_event_stored(conn)
        has_movies = await CatalogRepository(conn).any_stored()
    return not has_events and not has_movies


async def load_world(
    world: World, *, database: Database, events: EventStore, event_topic: str, catalog_topic: str
) -> tuple[int, int]:
    """Returns (movies, events) stored."""
    items = [MovieBatchItem.model_validate(movie) for movie in world.movies]
    for start in range(0, len(items), _MOVIE_BATCH):
        async with database.transaction() as conn:
            await upsert_movies(
                conn,
                [(item.movie_id, item) for item in items[start : start + _MOVIE_BATCH]],
                source="demo",
                topic=catalog_topic,
            )
    stored = 0
    for start in range(0, len(world.events), _EVENT_BATCH):
        batch: list[NewEvent] = []
        for raw in world.events[start : start + _EVENT_BATCH]:
            parsed = parse_batch_item(raw)
            if isinstance(parsed, str):  # the generator's own tests keep this from happening
                raise ValueError(f"demo event rejected: {parsed}")
            batch.append(parsed)
        outcomes = await events.ingest(batch, topic=event_topic)
        stored += sum(o.status == "accepted" for o in outcomes)
        if start // _EVENT_BATCH % 20 == 0:
            log.info("demo_world_loading", events=stored, of=len(world.events))
    return len(items), stored
