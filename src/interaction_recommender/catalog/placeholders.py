"""Placeholders: a movie first seen in an event becomes a bare, available catalog entry, so that
it can be recommended collaboratively before any metadata arrives.

Done by a consumer of `interaction_events` (its own group), never on the ingest path: batched per
poll, skipping movies the in-memory catalog already knows, idempotent (ON CONFLICT DO NOTHING).
"""

from __future__ import annotations

from uuid import UUID

import orjson

from interaction_recommender.bus.base import Record
from interaction_recommender.catalog.cache import CatalogCache
from interaction_recommender.catalog.service import create_placeholders
from interaction_recommender.storage.database import Database

__all__ = ["PlaceholderCreator"]


class PlaceholderCreator:
    def __init__(self, database: Database, catalog: CatalogCache, *, topic: str) -> None:
        self._database = database
        self._catalog = catalog
        self._topic = topic
        self.created = 0

    async def handle(self, records: list[Record]) -> None:
        unknown = {m for m in map(_movie_id, records) if m is not None and m not in self._catalog}
        if not unknown:
            return
        async with self._database.transaction() as conn:
            self.created += len(await create_placeholders(conn, unknown, topic=self._topic))


def _movie_id(record: Record) -> UUID | None:
    """The event's movie, or None (a search, or a message the feature stage will dead-letter)."""
    if record.value is None:
        return None
    try:
        value = orjson.loads(record.value).get("movieId")
        return UUID(value) if isinstance(value, str) else None
    except (orjson.JSONDecodeError, AttributeError, ValueError):
        return None
