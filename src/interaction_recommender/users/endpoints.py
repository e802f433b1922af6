"""User erasure (admin)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends

from interaction_recommender.deps import from_state, require_admin
from interaction_recommender.users.erasure import UserErasure
from interaction_recommender.users.schemas import ErasureResponse

__all__ = ["router"]

router = APIRouter(tags=["users"], dependencies=[Depends(require_admin)])

Erasure = Annotated[UserErasure, Depends(from_state("erasure"))]


@router.delete("/users/{user_id}", summary="Erase everything kept about a user (ADMIN_TOKEN)")
async def erase(user_id: UUID, erasure: Erasure) -> ErasureResponse:
    erased_at = await erasure.erase(user_id)
    return ErasureResponse(user_id=user_id, status="erased", erased_at=erased_at)
