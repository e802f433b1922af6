"""The served form of a user's features: the camelCase document of GET /features and of the
`processed_features` topic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from interaction_recommender.features.state import UserFeatures, aware, genre_affinity_at

__all__ = ["feature_document"]


def feature_document(features: UserFeatures, *, now: datetime | None = None) -> dict[str, Any]:
    """The camelCase document served by GET /features and published on processed_features.
    Values are orjson-serialisable (UUIDs and aware UTC datetimes; dump with OPT_UTC_Z). Lists
    are most recent first; maps of counts and scores are sorted by value, descending."""
    reference = now if now is not None else features.last_activity_at
    affinity = genre_affinity_at(features, reference) if reference is not None else {}
    return {
        "totalInteractions": features.total_interactions,
        "counts": dict(features.counts),
        "avgRating": float(features.avg_rating),
        "ratingCount": features.rating_count,
        "highRated": list(features.high_rated),
        "favorites": features.favorite_list,
        "watchHistory": [
            {
                "movieId": movie_id,
                "progress": entry.progress,
                "completed": entry.completed,
                "views": entry.views,
                "rewatches": entry.rewatches,
                "watchSeconds": entry.watch_seconds,
                "lastWatchedAt": _utc(entry.last_watched_at),
            }
            for movie_id, entry in reversed(features.watch_history.items())
        ],
        "totalWatchSeconds": features.total_watch_seconds,
        "viewCount": features.view_count,
        "avgWatchSeconds": float(features.avg_watch_seconds),
        "completedCount": features.completed_count,
        "recentSearches": [
            {"query": search.query, "at": _utc(search.at)} for search in reversed(features.searches)
        ],
        "topKeywords": [
            {"keyword": keyword, "count": count} for keyword, count in _by_value(features.keywords)
        ],
        "devices": dict(_by_value(features.devices)),
        "qualities": dict(_by_value(features.qualities)),
        "genreAffinity": dict(_by_value(affinity)),
        "seenCount": features.seen_count,
        "createdAt": _utc(features.created_at),
        "lastActivityAt": _utc(features.last_activity_at),
    }


def _by_value(mapping: dict[str, Any]) -> list[tuple[str, Any]]:
    return sorted(mapping.items(), key=lambda item: (-item[1], item[0]))


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value).astimezone(UTC)
