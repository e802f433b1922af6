"""Wire schemas of the feature routes (docs/contract.md)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from interaction_recommender.wire import UtcTimestamp, WireModel

__all__ = ["FeatureRefreshResponse", "UserFeaturesResponse"]


class UserFeaturesResponse(WireModel):
    user_id: UUID
    features: dict[str, Any]
    version: int
    updated_at: UtcTimestamp


class FeatureRefreshResponse(WireModel):
    user_id: UUID
    status: str
    feature_count: int
    version: int
    refreshed_at: UtcTimestamp
