"""Catalog writes. Each function runs in the caller's transaction and writes a `movie_catalog`
message for every movie it created or changed (outbox, same transaction), so other processes and
consumers hear about exactly the changes that committed. ``CatalogService`` is the routes' unit
of work around them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.catalog.messages import CatalogChange, catalog_messages
from interaction_recommender.catalog.repository import CatalogRepository
from interaction_recommender.catalog.schemas import MovieFields, MovieSource
from interaction_recommender.outbox.repository import OutboxRepository
from interaction_recommender.storage.database import Database
from interaction_recommender.wire import utc_now

__all__ = ["CatalogService", "create_placeholders", "hide_unlisted", "upsert_movies"]


class CatalogService:
    """The catalog routes: one transaction per call."""

    def __init__(self, database: Database, *, topic: str) -> None:
        self._database = database
        self._topic = topic

    async def put(self, movie_id: UUID, fields: MovieFields) -> Row[Any]:
        """Merge ``fields`` into the movie (created if new); the stored row."""
        async with self._database.transaction() as conn:
            await upsert_movies(conn, [(movie_id, fields)], source="api", topic=self._topic)
            (row,) = await CatalogRepository(conn).get_many([movie_id])
        return row

    async def put_many(self, items: Sequence[tuple[UUID, MovieFields]]) -> None:
        async with self._database.transaction() as conn:
            await upsert_movies(conn, items, source="api", topic=self._topic)

    async def get(self, movie_id: UUID) -> Row[Any] | None:
        async with self._database.transaction() as conn:
            rows = await CatalogRepository(conn).get_many([movie_id])
        return rows[0] if rows else None


async def upsert_movies(
    conn: AsyncConnection,
    items: Sequence[tuple[UUID, MovieFields]],
    *,
    source: MovieSource,
    topic: str,
) -> list[UUID]:
    """Merge-upsert; returns the ids that were created or changed."""
    now = utc_now()
    changed = await CatalogRepository(conn).upsert(items, source=source, now=now)
    await _announce(conn, changed, "upserted", topic)
    return changed


async def create_placeholders(
    conn: AsyncConnection, movie_ids: Iterable[UUID], *, topic: str
) -> list[UUID]:
    """A bare, available entry for every movie id not in the catalog; returns those created."""
    created = await CatalogRepository(conn).insert_placeholders(movie_ids, utc_now())
    await _announce(conn, created, "placeholder", topic)
    return created


async def hide_unlisted(
    conn: AsyncConnection, listed: set[UUID], *, source: MovieSource, topic: str
) -> list[UUID]:
    """After a COMPLETE walk of a source: hide its movies that it no longer lists."""
    repo = CatalogRepository(conn)
    gone = sorted((await repo.available_ids(source)) - listed)
    await repo.hide(gone, utc_now())
    await _announce(conn, gone, "hidden", topic)
    return gone


async def _announce(
    conn: AsyncConnection, movie_ids: Sequence[UUID], change: CatalogChange, topic: str
) -> None:
    if not movie_ids:
        return
    rows = await CatalogRepository(conn).get_many(movie_ids)
    await OutboxRepository(conn).add(catalog_messages(topic, rows, change), utc_now())
