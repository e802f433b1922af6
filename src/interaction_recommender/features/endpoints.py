"""Feature routes: read a user's features, refresh them from the stored events."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from interaction_recommender.deps import from_state
from interaction_recommender.features.document import feature_document
from interaction_recommender.features.schemas import FeatureRefreshResponse, UserFeaturesResponse
from interaction_recommender.features.service import FeatureService
from interaction_recommender.wire import utc_now

__all__ = ["router"]

router = APIRouter(tags=["features"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No events for this user."}}
_MIN_DAYS, _MAX_DAYS = 1, 365


Features = Annotated[FeatureService, Depends(from_state("features"))]


@router.get("/features/{user_id}", responses=_NOT_FOUND, summary="A user's features")
async def get_features(user_id: UUID, service: Features) -> UserFeaturesResponse:
    features = await service.get(user_id)
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
    service: Features,
    days_back: int = Query(
        default=90, description="Clamped to 1..365 (docs/contract.md: lenient)."
    ),
) -> FeatureRefreshResponse:
    days = min(max(days_back, _MIN_DAYS), _MAX_DAYS)
    features = await service.refresh(user_id, days)
    return FeatureRefreshResponse(
        user_id=user_id,
        status="refreshed",
        feature_count=len(feature_document(features)),
        version=features.version,
        refreshed_at=utc_now(),
    )
