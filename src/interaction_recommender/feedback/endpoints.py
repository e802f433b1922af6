"""Feedback routes: POST /feedback (docs/contract.md) and GET /metrics/online."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from interaction_recommender.deps import from_state
from interaction_recommender.feedback.schemas import FeedbackRequest, FeedbackResponse
from interaction_recommender.feedback.service import FeedbackService
from interaction_recommender.http import json_response
from interaction_recommender.wire import Instant

__all__ = ["router"]

router = APIRouter(tags=["feedback"])

Feedback = Annotated[FeedbackService, Depends(from_state("feedback"))]


@router.post(
    "/feedback",
    summary="What a user did with a recommendation (idempotent by requestId or content)",
)
async def post_feedback(request: FeedbackRequest, feedback: Feedback) -> FeedbackResponse:
    row, status = await feedback.record(request)
    return FeedbackResponse(
        feedback_id=row.feedback_id,
        status=status,
        processed_at=row.received_at,
        recommendation_id=row.recommendation_id,
        join_method=row.join_method,
    )


@router.get(
    "/metrics/online",
    summary="Click-through, watch-through, coverage and MRR per context and model version",
    response_class=Response,
    description="Over impressions shown since `since` (default: the last 24 hours); 95% "
    "intervals (Wilson for rates, normal approximation for MRR). docs/feedback.md.",
)
async def online_metrics(
    feedback: Feedback,
    context: str | None = Query(default=None, max_length=50, description="home, similar, ..."),
    model_version: str | None = Query(default=None, alias="modelVersion", max_length=200),
    since: Instant | None = Query(default=None, description="ISO-8601 instant with offset."),
) -> Response:
    start, until, groups = await feedback.online_metrics(
        since, context=context, model_version=model_version
    )
    return json_response({"since": start, "until": until, "groups": groups})
