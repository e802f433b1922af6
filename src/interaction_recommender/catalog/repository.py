"""All catalog SQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, case, exists, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender.catalog.schemas import MovieFields, MovieSource
from interaction_recommender.storage.tables import movies

__all__ = ["CatalogRepository"]

_CHUNK = 1000  # rows per statement (SQLite caps bound parameters per statement)


class CatalogRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    async def upsert(
        self, items: Sequence[tuple[UUID, MovieFields]], *, source: MovieSource, now: datetime
    ) -> list[UUID]:
        """Merge the given fields into each movie, creating it if new. A field that was not
        given (None) keeps its stored value. Returns the ids whose row was created or changed.

        Rows are grouped by which fields they give, so that each statement's ON CONFLICT clause
        sets exactly those fields: the merge happens in the database, safe under concurrency."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for movie_id, fields in items:
            given = fields.given()
            groups[tuple(sorted(given))].append(
                {
                    "movie_id": movie_id,
                    **given,
                    "source": source,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        changed: list[UUID] = []
        for names, rows in groups.items():
            for start in range(0, len(rows), _CHUNK):
                changed += await self._upsert_group(names, rows[start : start + _CHUNK], source)
        return changed

    async def _upsert_group(
        self, names: tuple[str, ...], rows: list[dict[str, Any]], source: MovieSource
    ) -> list[UUID]:
        statement = self._insert(movies)
        excluded = statement.excluded
        # The movie service owns what it lists; other writers only claim placeholders.
        claims = (
            movies.c.source == "event" if source != "movie-service" else movies.c.source != source
        )
        set_: dict[str, Any] = {name: excluded[name] for name in names}
        set_["source"] = case((claims, excluded.source), else_=movies.c.source)
        set_["updated_at"] = excluded.updated_at
        changed_when = or_(claims, *(movies.c[n].is_distinct_from(excluded[n]) for n in names))
        upsert = statement.on_conflict_do_update(
            index_elements=[movies.c.movie_id], set_=set_, where=changed_when
        ).returning(movies.c.movie_id)
        result = await self._conn.execute(upsert, rows)
        return [row.movie_id for row in result.all()]

    async def insert_placeholders(self, movie_ids: Iterable[UUID], now: datetime) -> list[UUID]:
        """A bare, available entry for each movie not in the catalog yet; returns those created."""
        rows = [
            {"movie_id": m, "source": "event", "created_at": now, "updated_at": now}
            for m in sorted(set(movie_ids))
        ]
        created: list[UUID] = []
        for start in range(0, len(rows), _CHUNK):
            statement = (
                self._insert(movies)
                .on_conflict_do_nothing(index_elements=[movies.c.movie_id])
                .returning(movies.c.movie_id)
            )
            result = await self._conn.execute(statement, rows[start : start + _CHUNK])
            created += [row.movie_id for row in result.all()]
        return created

    async def available_ids(self, source: MovieSource) -> set[UUID]:
        result = await self._conn.execute(
            select(movies.c.movie_id).where(movies.c.source == source, movies.c.available)
        )
        return {row.movie_id for row in result.all()}

    async def hide(self, movie_ids: Sequence[UUID], now: datetime) -> None:
        for start in range(0, len(movie_ids), _CHUNK):
            chunk = movie_ids[start : start + _CHUNK]
            await self._conn.execute(
                update(movies)
                .where(movies.c.movie_id.in_(chunk))
                .values(available=False, updated_at=now)
            )

    async def get_many(self, movie_ids: Sequence[UUID]) -> list[Row[Any]]:
        rows: list[Row[Any]] = []
        for start in range(0, len(movie_ids), _CHUNK):
            chunk = movie_ids[start : start + _CHUNK]
            result = await self._conn.execute(select(movies).where(movies.c.movie_id.in_(chunk)))
            rows += result.all()
        return rows

    async def any_stored(self) -> bool:
        return bool((await self._conn.execute(select(exists().select_from(movies)))).scalar())

    async def database_now(self) -> datetime:
        """The database's clock (the catalog poll's watermark: writers stamp `updated_at` with
        it). SQLite: the embedded mode, one process, one clock."""
        if self._conn.dialect.name != "postgresql":
            return datetime.now(UTC)
        value = (await self._conn.execute(text("SELECT statement_timestamp()"))).scalar_one()
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    async def changed_since(self, since: datetime | None) -> list[Row[Any]]:
        query = select(movies)
        if since is not None:
            query = query.where(movies.c.updated_at >= since)
        return list((await self._conn.execute(query)).all())
