"""Dead-letter admin routes (ADMIN_TOKEN): list, replay."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field, model_validator

from interaction_recommender.deadletter.repository import DeadLetterRepository
from interaction_recommender.deadletter.service import dead_letter_document, replay
from interaction_recommender.deps import RuntimeDep, Transaction, require_admin
from interaction_recommender.wire import WireModel, json_response

__all__ = ["router"]

router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])


class ReplayRequest(WireModel):
    ids: list[int] | None = Field(default=None, max_length=10_000)
    all: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> ReplayRequest:
        if (self.ids is None) == (not self.all):
            raise ValueError('give either "ids" or "all": true')
        return self


class ReplayResponse(WireModel):
    replayed: list[int]


@router.get("/admin/dlq", summary="Dead letters, oldest first")
async def list_dead_letters(
    conn: Transaction,
    pending: bool = Query(default=True, description="Only those not replayed yet."),
    limit: int = Query(default=100, ge=1, le=1000),
) -> Response:
    repo = DeadLetterRepository(conn)
    rows = await repo.recent(pending_only=pending, limit=limit)
    body: dict[str, Any] = {
        "deadLetters": [dead_letter_document(row) for row in rows],
        "pendingCount": await repo.count_pending(),
    }
    return json_response(body)


@router.post("/admin/dlq/replay", summary="Re-inject dead letters into their topic")
async def replay_dead_letters(
    body: ReplayRequest, conn: Transaction, runtime: RuntimeDep
) -> ReplayResponse:
    replayed = await replay(conn, None if body.all else body.ids)
    return ReplayResponse(replayed=replayed)
