"""User erasure (admin): request it, follow it."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from interaction_recommender.deps import from_state, require_admin
from interaction_recommender.errors import NotFound
from interaction_recommender.http import json_response
from interaction_recommender.users.erasure import ErasureJobs, erasure_document

__all__ = ["router"]

router = APIRouter(tags=["users"], dependencies=[Depends(require_admin)])

Erasures = Annotated[ErasureJobs, Depends(from_state("erasure"))]


@router.delete(
    "/users/{user_id}",
    status_code=202,
    summary="Erase everything kept about a user (ADMIN_TOKEN)",
    description="Answers 202 once the erasure is durable: from then on nothing new is stored "
    "for the user. Its steps (one per store) run at once and are retried until done; follow "
    "them at GET /users/{userId}/erasure (docs/features.md, erasure).",
)
async def erase(user_id: UUID, erasures: Erasures) -> Response:
    record = await erasures.request(user_id)
    body = erasure_document(record, user_id) | {"statusUrl": f"/api/v1/users/{user_id}/erasure"}
    return json_response(body, status_code=202)


@router.get("/users/{user_id}/erasure", summary="Where the user's latest erasure stands")
async def erasure_status(user_id: UUID, erasures: Erasures) -> Response:
    record = await erasures.status(user_id)
    if record is None:
        raise NotFound("This user was never erased.")
    return json_response(erasure_document(record, user_id))
