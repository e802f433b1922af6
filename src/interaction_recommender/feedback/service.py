"""Explicit feedback (POST /feedback): idempotent, joined to the impression it is about, stored
with its `model_feedback` message in one transaction (the outbox publishes it after commit)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from interaction_recommender import metrics
from interaction_recommender.catalog.cache import CatalogCache
from interaction_recommender.feedback.impressions import ImpressionLog
from interaction_recommender.feedback.messages import feedback_message
from interaction_recommender.feedback.online import outcomes, summarize
from interaction_recommender.feedback.repository import (
    FeedbackRepository,
    FeedbackRow,
    Impression,
    ImpressionRepository,
)
from interaction_recommender.feedback.schemas import FeedbackRequest
from interaction_recommender.outbox.repository import OutboxRepository
from interaction_recommender.storage.database import Database
from interaction_recommender.storage.erased import erased_among
from interaction_recommender.wire import utc_now

__all__ = ["FeedbackService"]

_CLOCK_SKEW = timedelta(minutes=5)  # a caller's clock may run ahead of ours


class FeedbackService:
    def __init__(
        self,
        database: Database,
        impressions: ImpressionLog | None,
        catalog: CatalogCache,
        *,
        topic: str,
        join_window_s: int,
    ) -> None:
        self._database = database
        self._impressions = impressions
        self._catalog = catalog
        self._topic = topic
        self._join_window = timedelta(seconds=join_window_s)

    async def record(self, request: FeedbackRequest) -> tuple[FeedbackRow, str]:
        """(the stored row, "recorded" | "duplicate")."""
        key = request.dedupe_key()
        if self._impressions is not None and self._impressions.holds(request.user_id):
            # The impression this feedback is about may still be in this process's buffer.
            # Only then: a flush for every feedback queued them behind each other's writes
            # (bench/soak.py saw feedback p99 at 3x recommend's).
            with contextlib.suppress(Exception):
                await self._impressions.flush()
        now = utc_now()
        async with self._database.transaction() as conn:
            if await erased_among(conn, [request.user_id]):
                # Answered as usual (the Java callers never see a difference), never stored.
                metrics.ERASED_USER_WRITES_DROPPED.labels("feedback").inc()
                return _row(request, key, None, "none", now), "recorded"
            repository = FeedbackRepository(conn)
            if (existing := await repository.by_dedupe_key(key)) is not None:
                return existing, "duplicate"
            impression, join = await self._join(conn, request, request.timestamp or now)
            row = _row(request, key, impression, join, now)
            if not await repository.add_new([row]):  # a concurrent twin committed first
                twin = await repository.by_dedupe_key(key)
                assert twin is not None
                return twin, "duplicate"
            policy = impression.policy if impression is not None else None
            await OutboxRepository(conn).add(
                [feedback_message(row, topic=self._topic, policy=policy)], now
            )
        metrics.FEEDBACK.labels("explicit", join).inc()
        return row, "recorded"

    async def online_metrics(
        self, since: datetime | None, *, context: str | None, model_version: str | None
    ) -> tuple[datetime, datetime, list[dict[str, Any]]]:
        """GET /metrics/online: the impressions shown since ``since`` (default: the last day),
        joined with their feedback, summarised per context and model version: (from, until,
        the groups of feedback/online.py)."""
        now = utc_now()
        start = since or now - timedelta(days=1)
        if self._impressions is not None and self._impressions.pending:
            await self._impressions.flush()
        async with self._database.transaction() as conn:
            shown = await ImpressionRepository(conn).shown_since(
                start, context=context, model_version=model_version
            )
            rows = await FeedbackRepository(conn).for_impressions(
                [i.recommendation_id for i in shown]
            )
        available = sum(1 for movie in self._catalog.movies() if movie.available)
        return start, now, summarize(outcomes(shown, rows), available)

    async def _join(
        self, conn: AsyncConnection, request: FeedbackRequest, at: datetime
    ) -> tuple[Impression | None, str]:
        impressions = ImpressionRepository(conn)
        if request.recommendation_id is not None:
            found = await impressions.get(request.recommendation_id)
            if found is not None and found.user_id == request.user_id:
                return found, "recommendationId"
        shown = set(map(str, request.impression_list))
        if not shown and request.clicked_item_id is not None:
            shown = {str(request.clicked_item_id)}
        if shown:
            candidates = await impressions.of_user(
                request.user_id, at - self._join_window, at + _CLOCK_SKEW
            )
            for candidate in candidates:  # newest first: the list the user saw last
                if shown <= {movie for movie, _ in candidate.items}:
                    return candidate, "window"
        if request.recommendation_id is not None:
            return None, "unseen"  # named by the caller, not (yet) in our log
        return None, "none"


def _row(
    request: FeedbackRequest,
    key: str,
    impression: Impression | None,
    join: str,
    now: datetime,
) -> FeedbackRow:
    position = None
    if request.clicked_item_id is not None:
        if request.clicked_item_id in request.impression_list:  # what the caller showed
            position = request.impression_list.index(request.clicked_item_id) + 1
        elif impression is not None:
            position = impression.position_of(request.clicked_item_id)
    return FeedbackRow(
        feedback_id=uuid.uuid4(),
        dedupe_key=key,
        source="explicit",
        user_id=request.user_id,
        recommendation_id=(
            impression.recommendation_id if impression is not None else request.recommendation_id
        ),
        join_method=join,
        action=request.action,
        context=request.context or (impression.context if impression is not None else None),
        model_version=request.model_version
        or (impression.model_version if impression is not None else None),
        impression_count=len(request.impression_list)
        or (len(impression.items) if impression is not None else 0),
        clicked_item_id=request.clicked_item_id,
        click_position=position,
        watch_time_sec=request.watch_time_sec,
        occurred_at=request.timestamp or now,
        received_at=now,
    )
