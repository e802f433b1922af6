"""Wire schemas of the recommendation and model routes (docs/contract.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import Field

from interaction_recommender.wire import UtcTimestamp, WireModel, dumps

__all__ = [
    "ModelInfoResponse",
    "ModelVersionSummary",
    "ModelsResponse",
    "RecommendationResponse",
    "RecommendedMovie",
    "ReloadResponse",
    "RollbackRequest",
    "RollbackResponse",
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
    propagates_within_s: float
    """Every other process (on every host) serves the same within this many seconds."""


class RollbackRequest(WireModel):
    name: str = Field(default="champion", min_length=1, max_length=100)
    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A kept version; default: the one the name pointed at before its last move.",
    )


class RollbackResponse(WireModel):
    status: str  # rolledBack
    name: str
    previous_version: str
    new_version: str
    reloaded_at: UtcTimestamp
    propagates_within_s: float


class ModelVersionSummary(WireModel):
    version: str
    created_at: UtcTimestamp
    source: str
    trained_for: str | None
    size_bytes: int
    trained_at: str | None
    data_window: Any = None
    counts: Any = None
    offline_metrics: Any = None
    params: Any = None


class ModelsResponse(WireModel):
    """GET /models: the store's names and the training history (newest first)."""

    names: dict[str, str]
    versions: list[ModelVersionSummary]


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
    signed_by: str | None = None
    """The key id (model/signing.py) of the key that signed the served bundle."""
    names: dict[str, str] | None = None
    """Every model name this process serves, and its version."""
