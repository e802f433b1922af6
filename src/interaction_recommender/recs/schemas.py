"""Wire schemas of the recommendation and model routes (docs/contract.md)."""

from __future__ import annotations

from uuid import UUID

from interaction_recommender.wire import UtcTimestamp, WireModel

__all__ = ["RecommendationResponse", "RecommendedMovie", "ReloadResponse"]


class RecommendedMovie(WireModel):
    movie_id: UUID
    score: float
    reasons: list[str]


class RecommendationResponse(WireModel):
    user_id: UUID
    model_version: str
    cached: bool
    recommendations: list[RecommendedMovie]
    generated_at: UtcTimestamp
    context: str
    recommendation_id: UUID
    policy: str


class ReloadResponse(WireModel):
    status: str
    previous_version: str | None
    new_version: str | None
    reloaded_at: UtcTimestamp
