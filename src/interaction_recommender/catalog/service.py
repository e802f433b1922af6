"""Catalog writes. Each runs in the caller's transaction and writes a `movie_catalog` message for
every movie it created or changed (outbox, same transaction), so other processes and consumers
hear about exactly the changes that committed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.catalog.messages import CatalogChange, catalog_messages
from interaction_recommender.catalog.repository import CatalogRepository
from interaction_recommender.catalog.schemas import MovieFields, MovieSource
from interaction_recommender.outbox.repository import OutboxRepository
from interaction_recommender.wire import utc_now

__all__ = ["create_placeholders", "hide_unlisted", "upsert_movies"]


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
