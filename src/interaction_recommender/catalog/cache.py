"""Every process's in-memory copy of the catalog (what recommendations read).

Loaded in full at start, then refreshed by polling for rows whose ``updated_at`` moved: a change
made by any process (an API call, `recommender catalog sync`, a placeholder) is visible here
within ``CATALOG_POLL_S`` (default 2 s). Each poll re-reads an overlap window, so a transaction
that committed a little after its timestamp is not missed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import structlog

from interaction_recommender.background import BackgroundLoop
from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.catalog.repository import CatalogRepository
from interaction_recommender.storage.database import Database

__all__ = ["CatalogCache"]

log = structlog.get_logger(__name__)


class CatalogCache(BackgroundLoop):
    def __init__(self, database: Database, *, poll_s: float, overlap_s: float = 10.0) -> None:
        super().__init__("catalog-poll")
        self._database = database
        self._poll_s = poll_s
        self._overlap = timedelta(seconds=overlap_s)
        self._movies: dict[UUID, CatalogMovie] = {}
        self._watermark: datetime | None = None
        self.version = 0
        """Increases whenever a movie changed: caches derived from the catalog key on it."""
        self.hidden_ids: frozenset[bytes] = frozenset()
        """The unavailable movies' ids as 36 ASCII bytes: what a cached list is filtered by."""
        self.last_refresh_error: str | None = None

    def __contains__(self, movie_id: object) -> bool:
        return movie_id in self._movies

    def __len__(self) -> int:
        return len(self._movies)

    def get(self, movie_id: UUID) -> CatalogMovie | None:
        return self._movies.get(movie_id)

    def is_available(self, movie_id: UUID) -> bool:
        movie = self._movies.get(movie_id)
        return movie is not None and movie.available

    def movies(self) -> list[CatalogMovie]:
        return list(self._movies.values())

    async def refresh(self) -> int:
        """Apply every change since the last refresh; returns how many movies changed.

        The watermark is the database's clock when the previous read began, not the newest
        `updated_at` seen: after a bulk load every movie is within the overlap of the newest one,
        and a watermark taken from the rows would re-read the whole catalog on every poll. The
        overlap covers commits that land after a read with an `updated_at` from before it (and
        clock skew between writers and the database)."""
        since = None if self._watermark is None else self._watermark - self._overlap
        async with self._database.transaction() as conn:
            repository = CatalogRepository(conn)
            started = await repository.database_now()
            rows = await repository.changed_since(since)
        changed = 0
        for row in rows:
            current = self._movies.get(row.movie_id)
            if current is None or current.updated_at != row.updated_at:
                self._movies[row.movie_id] = CatalogMovie.from_row(row)
                changed += 1
        self._watermark = started
        if changed:
            self.version += 1
            self.hidden_ids = frozenset(
                str(m.movie_id).encode() for m in self._movies.values() if not m.available
            )
        return changed

    async def _run(self) -> None:
        while True:
            await self.pause(self._poll_s)
            if self.stopping:
                return
            try:
                await self.refresh()
                self.last_refresh_error = None
            except Exception as exc:  # keep serving the last good copy; health shows the error
                self.last_refresh_error = type(exc).__name__
                log.warning("catalog_refresh_failed", error=type(exc).__name__)
