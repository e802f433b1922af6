"""A movie as every process keeps it in memory (the catalog cache's value type)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row

__all__ = ["CatalogMovie"]


@dataclass(frozen=True, slots=True)
class CatalogMovie:
    movie_id: UUID
    title: str | None
    genres: tuple[str, ...]
    release_year: int | None
    release_date: date | None
    duration_minutes: int | None
    minimum_age: int | None
    country: str | None
    available: bool
    tags: tuple[str, ...]
    source: str
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> CatalogMovie:
        return cls(
            movie_id=row.movie_id,
            title=row.title,
            genres=tuple(row.genres or ()),
            release_year=row.release_year,
            release_date=row.release_date,
            duration_minutes=row.duration_minutes,
            minimum_age=row.minimum_age,
            country=row.country,
            available=row.available,
            tags=tuple(row.tags or ()),
            source=row.source,
            updated_at=row.updated_at,
        )
