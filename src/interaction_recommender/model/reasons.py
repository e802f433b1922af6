"""The fixed vocabulary of reasons (docs/recommendations.md). Every recommended item carries at
least one; parameterised reasons name a real movie, genre or search keyword."""

from __future__ import annotations

from uuid import UUID

__all__ = [
    "COLLABORATIVE",
    "NEW_RELEASE",
    "POPULAR",
    "TRENDING",
    "VOCABULARY",
    "because_you_watched",
    "matches_genre",
    "matches_search",
    "similar_to",
]

COLLABORATIVE = "collaborative"
POPULAR = "popular"
TRENDING = "trending"
NEW_RELEASE = "new_release"

VOCABULARY = (
    "because_you_watched:<movieId>",
    "similar_to:<movieId>",
    "matches_genre:<genre>",
    "matches_search:<keyword>",
    COLLABORATIVE,
    TRENDING,
    POPULAR,
    NEW_RELEASE,
)


def because_you_watched(movie_id: UUID) -> str:
    return f"because_you_watched:{movie_id}"


def similar_to(movie_id: UUID) -> str:
    return f"similar_to:{movie_id}"


def matches_genre(genre: str) -> str:
    return f"matches_genre:{genre}"


def matches_search(keyword: str) -> str:
    return f"matches_search:{keyword}"
