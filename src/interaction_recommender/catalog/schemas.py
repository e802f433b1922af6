"""Wire schemas of the catalog API. A movie's fields are all optional on input: absent and null
both mean "leave the stored value unchanged" (Java clients send nulls)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints

from interaction_recommender.wire import UtcTimestamp, WireModel, check_text

__all__ = [
    "MAX_MOVIE_BATCH",
    "MOVIE_FIELDS",
    "Movie",
    "MovieBatchItem",
    "MovieBatchRequest",
    "MovieBatchResponse",
    "MovieFields",
    "MovieSource",
]

MAX_MOVIE_BATCH = 5000

MovieSource = Literal["api", "movie-service", "event", "demo"]

_Title = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(check_text)]
_Label = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, strip_whitespace=True),
    AfterValidator(check_text),
]


def _dedupe(values: list[str] | None) -> list[str] | None:
    """Keep the first spelling of each value (case-insensitive), in order."""
    if values is None:
        return None
    seen: set[str] = set()
    kept = []
    for value in values:
        if value.lower() not in seen:
            seen.add(value.lower())
            kept.append(value)
    return kept


_Labels = Annotated[list[_Label], Field(max_length=50), AfterValidator(_dedupe)]


class MovieFields(WireModel):
    """The mergeable fields of a movie; None = not given (leave unchanged)."""

    title: _Title | None = None
    genres: _Labels | None = None
    release_year: int | None = Field(default=None, ge=1870, le=2100)
    release_date: date | None = None
    duration_minutes: int | None = Field(default=None, ge=0, le=10_000)
    minimum_age: int | None = Field(default=None, ge=0, le=21)
    country: _Label | None = None
    available: bool | None = None
    tags: _Labels | None = None

    def given(self) -> dict[str, Any]:
        """The movie fields that were given (non-null), by column name."""
        values = ((name, getattr(self, name)) for name in MovieFields.model_fields)
        return {name: value for name, value in values if value is not None}


MOVIE_FIELDS: tuple[str, ...] = tuple(MovieFields.model_fields)


class MovieBatchItem(MovieFields):
    movie_id: UUID


class MovieBatchRequest(WireModel):
    movies: list[Any] = Field(
        max_length=MAX_MOVIE_BATCH, description="Each item: movieId plus any movie fields."
    )


class Movie(WireModel):
    """A movie as stored (GET /movies/{movieId})."""

    movie_id: UUID
    title: str | None
    genres: list[str]
    release_year: int | None
    release_date: date | None
    duration_minutes: int | None
    minimum_age: int | None
    country: str | None
    available: bool
    tags: list[str]
    source: MovieSource
    created_at: UtcTimestamp
    updated_at: UtcTimestamp


class MovieBatchResult(WireModel):
    index: int
    movie_id: UUID | None = None
    status: Literal["upserted", "rejected"]
    error: str | None = None


class MovieBatchResponse(WireModel):
    results: list[MovieBatchResult]
    upserted: int
    rejected: int
