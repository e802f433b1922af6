"""Dead-letter admin routes (ADMIN_TOKEN): list, replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from interaction_recommender.deadletter.messages import dead_letter_document, set_aside_document
from interaction_recommender.deadletter.schemas import ReplayRequest, ReplayResponse
from interaction_recommender.deadletter.service import DeadLetterService
from interaction_recommender.deps import from_state, require_admin
from interaction_recommender.http import json_response

__all__ = ["router"]

router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])

DeadLetters = Annotated[DeadLetterService, Depends(from_state("dead_letters"))]


@router.get(
    "/admin/dlq",
    summary="Dead letters, oldest first, and outbox rows set aside",
    description="deadLetters: messages a consumer could not process (replayable). setAside: "
    "messages the bus refused for good (too large); their events are stored (training and "
    "POST /features/{id}/refresh use them) but never reached the topic (docs/topics.md).",
)
async def list_dead_letters(
    dead_letters: DeadLetters,
    pending: bool = Query(default=True, description="Only those not replayed yet."),
    limit: int = Query(default=100, ge=1, le=1000),
) -> Response:
    listing = await dead_letters.listing(pending_only=pending, limit=limit)
    return json_response(
        {
            "deadLetters": [dead_letter_document(row) for row in listing.letters],
            "pendingCount": listing.pending,
            "setAside": [set_aside_document(row) for row in listing.set_aside],
            "setAsideCount": listing.set_aside_count,
        }
    )


@router.post("/admin/dlq/replay", summary="Re-inject dead letters into their topic")
async def replay_dead_letters(body: ReplayRequest, dead_letters: DeadLetters) -> ReplayResponse:
    replayed = await dead_letters.replay(None if body.all else body.ids)
    return ReplayResponse(replayed=replayed)
