"""Wire schemas of the recommendation and model routes (docs/contract.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from interaction_recommender.wire import UtcTimestamp, WireModel, dumps

__all__ = [
    "ModelInfoResponse",
    "RecommendationResponse",
    "RecommendedMovie",
    "ReloadResponse",
    "recommendation_body",
]


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


def recommendation_body(
    *,
    user_id: UUID,
    model_version: str,
    cached: bool,
    items_json: bytes,
    generated_at: datetime,
    context: str,
    recommendation_id: UUID,
    policy: str,
) -> bytes:
    """A RecommendationResponse as bytes, around the movies' pre-serialised JSON objects
    (recs/cached_list.py): the same document the model would write, field for field, without
    validating and serialising every movie again on every answer."""
    return b"".join(
        (
            b'{"userId":"',
            str(user_id).encode(),
            b'","modelVersion":',
            orjson.dumps(model_version),
            b',"cached":',
            b"true" if cached else b"false",
            b',"recommendations":[',
            items_json,
            b'],"generatedAt":',
            dumps(generated_at),
            b',"context":',
            orjson.dumps(context),
            b',"recommendationId":"',
            str(recommendation_id).encode(),
            b'","policy":',
            orjson.dumps(policy),
            b"}",
        )
    )


class ReloadResponse(WireModel):
    status: str
    previous_version: str | None
    new_version: str | None
    reloaded_at: UtcTimestamp


class ModelInfoResponse(WireModel):
    """GET /model/info. The manifest's parts are passed through as the manifest has them; a
    fallback (no model loaded) answers only the first six fields."""

    status: str  # loaded | fallback
    version: str
    path: str
    loaded_at: UtcTimestamp | None
    fallback_policy: str
    last_error: str | None
    trained_at: datetime | str | None = None
    data_window: Any = None
    counts: Any = None
    feature_schema: Any = None
    components: Any = None
    params: Any = None
    offline_metrics: Any = None
    calibration: Any = None
    """λ of `home` lists: chosen at training (`lambda`, with the nDCG per λ tried) and the one
    this process serves with (`serving`: CALIBRATION_LAMBDA or DIVERSITY=false override it)."""
    sha256: str | None = None
