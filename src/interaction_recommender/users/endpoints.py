"""User erasure (admin)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends

from interaction_recommender.deps import RuntimeDep, require_admin
from interaction_recommender.users.erasure import erase_user
from interaction_recommender.wire import UtcTimestamp, WireModel

__all__ = ["router"]

router = APIRouter(tags=["users"], dependencies=[Depends(require_admin)])


class ErasureResponse(WireModel):
    user_id: UUID
    status: str
    erased_at: UtcTimestamp


@router.delete("/users/{user_id}", summary="Erase everything kept about a user (ADMIN_TOKEN)")
async def erase(user_id: UUID, runtime: RuntimeDep) -> ErasureResponse:
    erased_at = await erase_user(
        runtime.database,
        runtime.feature_store,
        user_id,
        features_topic=runtime.topics.processed_features,
        impressions=runtime.impressions,
    )
    await runtime.hydrator.forget(user_id)  # cached recommendation lists
    runtime.relay.notify()
    return ErasureResponse(user_id=user_id, status="erased", erased_at=erased_at)
