"""`movie_catalog` messages: one per created or changed movie (docs/topics.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Row

from interaction_recommender.outbox.repository import OutboxMessage
from interaction_recommender.wire import dumps

__all__ = ["SCHEMA_VERSION", "CatalogChange", "catalog_message", "movie_document"]

SCHEMA_VERSION = 1

CatalogChange = Literal["upserted", "placeholder", "hidden"]


def movie_document(row: Row[Any]) -> dict[str, Any]:
    """A stored movie in its wire shape (GET /movies/{id}, catalog messages)."""
    return {
        "movieId": row.movie_id,
        "title": row.title,
        "genres": row.genres or [],
        "releaseYear": row.release_year,
        "releaseDate": row.release_date,
        "durationMinutes": row.duration_minutes,
        "minimumAge": row.minimum_age,
        "country": row.country,
        "available": row.available,
        "tags": row.tags or [],
        "source": row.source,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    }


def catalog_message(topic: str, row: Row[Any], change: CatalogChange) -> OutboxMessage:
    body = {"schemaVersion": SCHEMA_VERSION, "change": change, "movie": movie_document(row)}
    return OutboxMessage(
        topic=topic,
        key=str(row.movie_id),
        payload=dumps(body),
    )


def catalog_messages(
    topic: str, rows: Sequence[Row[Any]], change: CatalogChange
) -> list[OutboxMessage]:
    return [catalog_message(topic, row, change) for row in rows]
