"""`recommender catalog sync`: read the movie service's whole catalog and apply it.

Only a COMPLETE walk changes anything: every listed movie is merged in (claimed as a
movie-service movie, available unless its status says otherwise), then movie-service movies that
are no longer listed are hidden. A walk that fails part-way raises before any write, so it hides
nothing. Re-running is safe: unchanged movies are neither written nor announced.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from interaction_recommender.catalog.movie_service import fetch_catalog
from interaction_recommender.catalog.service import hide_unlisted, upsert_movies
from interaction_recommender.settings import Settings
from interaction_recommender.storage.database import Database

__all__ = ["SyncReport", "sync_catalog"]


@dataclass(frozen=True)
class SyncReport:
    pages: int
    listed: int
    changed: int
    hidden: int
    skipped: int


async def sync_catalog(
    database: Database, settings: Settings, *, topic: str, client: httpx.AsyncClient | None = None
) -> SyncReport:
    if not settings.movie_service_url:
        raise ValueError("MOVIE_SERVICE_URL is not set")
    headers = (
        {"Authorization": f"Bearer {settings.movie_service_token}"}
        if settings.movie_service_token
        else {}
    )
    async with httpx.AsyncClient(timeout=settings.movie_service_timeout_s, headers=headers) as own:
        snapshot = await fetch_catalog(
            client or own,
            settings.movie_service_url,
            page_size=settings.movie_service_page_size,
            attempts=settings.movie_service_attempts,
        )
    items = [(movie.movie_id, movie) for movie in snapshot.movies]
    async with database.transaction() as conn:
        changed = await upsert_movies(conn, items, source="movie-service", topic=topic)
        hidden = await hide_unlisted(
            conn, {movie_id for movie_id, _ in items}, source="movie-service", topic=topic
        )
    return SyncReport(
        pages=snapshot.pages,
        listed=len(items),
        changed=len(changed),
        hidden=len(hidden),
        skipped=len(snapshot.skipped),
    )
