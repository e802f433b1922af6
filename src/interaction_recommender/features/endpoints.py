"""Feature routes: read a user's features, refresh them from the stored events."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query

from interaction_recommender.deps import RuntimeDep
from interaction_recommender.features.model import feature_document
from interaction_recommender.wire import UtcTimestamp, WireModel, utc_now

__all__ = ["router"]

router = APIRouter(tags=["features"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No events for this user."}}
_MIN_DAYS, _MAX_DAYS = 1, 365


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


@router.get("/features/{user_id}", responses=_NOT_FOUND, summary="A user's features")
async def get_features(user_id: UUID, runtime: RuntimeDep) -> UserFeaturesResponse:
    features = await runtime.features.get(user_id)
    now = utc_now()
    return UserFeaturesResponse(
        user_id=user_id,
        features=feature_document(features, now=now),
        version=features.version,
        updated_at=features.last_activity_at or now,
    )


@router.post(
    "/features/{user_id}/refresh",
    responses=_NOT_FOUND,
    summary="Recompute a user's features from the stored events of the last days_back days",
)
async def refresh_features(
    user_id: UUID,
    runtime: RuntimeDep,
    days_back: int = Query(default=90, description="Clamped to 1..365 (contract.md: lenient)."),
) -> FeatureRefreshResponse:
    days = min(max(days_back, _MIN_DAYS), _MAX_DAYS)
    features = await runtime.features.refresh(user_id, days)
    return FeatureRefreshResponse(
        user_id=user_id,
        status="refreshed",
        feature_count=len(feature_document(features)),
        version=features.version,
        refreshed_at=utc_now(),
    )
