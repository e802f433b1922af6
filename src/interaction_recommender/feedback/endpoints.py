"""Feedback routes: POST /feedback (contract.md) and GET /metrics/online."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import Response

from interaction_recommender.deps import RuntimeDep
from interaction_recommender.feedback.online import outcomes, summarize
from interaction_recommender.feedback.repository import FeedbackRepository, ImpressionRepository
from interaction_recommender.feedback.service import FeedbackRequest
from interaction_recommender.wire import Instant, UtcTimestamp, WireModel, json_response, utc_now

__all__ = ["router"]

router = APIRouter(tags=["feedback"])


class FeedbackResponse(WireModel):
    feedback_id: UUID
    status: str  # recorded | duplicate
    processed_at: UtcTimestamp
    recommendation_id: UUID | None
    join_method: str


@router.post(
    "/feedback",
    summary="What a user did with a recommendation (idempotent by requestId or content)",
)
async def post_feedback(request: FeedbackRequest, runtime: RuntimeDep) -> FeedbackResponse:
    row, status = await runtime.feedback.record(request)
    if status == "recorded":
        runtime.relay.notify()
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
    runtime: RuntimeDep,
    context: str | None = Query(default=None, max_length=50, description="home, similar, ..."),
    model_version: str | None = Query(default=None, alias="modelVersion", max_length=200),
    since: Instant | None = Query(default=None, description="ISO-8601 instant with offset."),
) -> Response:
    now = utc_now()
    start = since or now - timedelta(days=1)
    if runtime.impressions is not None and runtime.impressions.pending:
        await runtime.impressions.flush()
    async with runtime.database.transaction() as conn:
        shown = await ImpressionRepository(conn).shown_since(
            start, context=context, model_version=model_version
        )
        rows = await FeedbackRepository(conn).for_impressions([i.recommendation_id for i in shown])
    available = sum(1 for movie in runtime.catalog.movies() if movie.available)
    groups = summarize(outcomes(shown, rows), available)
    return json_response({"since": start, "until": now, "groups": groups})
