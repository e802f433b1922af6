"""Implicit feedback: a watch, rating or favorite of a movie the user was recommended counts as
feedback for that impression.

A consumer of `interaction_events` (its own group). For each such event, the newest impression
of the user shown at most ATTRIBUTION_WINDOW_S before it that contains the movie gets one implicit
feedback row (last-touch attribution), stored with its `model_feedback` message in one
transaction. Attributed once: a (user, movie, action) already attributed within the window is not
attributed again (progress heartbeats of one viewing, a replay, a redelivery), and the row's
dedupe key (impression, movie, action) makes a concurrent or repeated insert a no-op. Erased
users' events are dropped. Offsets are committed only after the transaction.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from uuid import UUID

import structlog

from interaction_recommender import metrics
from interaction_recommender.bus.base import Record
from interaction_recommender.events.messages import EventMessage, decode_event_message
from interaction_recommender.features.snapshot import SnapshotRepository
from interaction_recommender.feedback.impressions import ImpressionLog
from interaction_recommender.feedback.messages import feedback_message
from interaction_recommender.feedback.repository import (
    FeedbackRepository,
    FeedbackRow,
    Impression,
    ImpressionRepository,
)
from interaction_recommender.outbox.repository import OutboxRepository
from interaction_recommender.storage.database import Database
from interaction_recommender.wire import utc_now

__all__ = ["FeedbackAttribution", "implicit_action"]

log = structlog.get_logger(__name__)


def implicit_action(event: EventMessage) -> str | None:
    """What an event says about a recommended movie, or None (searches, unfavorites)."""
    if event.movie_id is None:
        return None
    if event.event_type == "watch":
        return "watch"
    if event.event_type == "rating":
        return "rating"
    if event.event_type == "favorite" and event.metadata.get("action") != "remove":
        return "favorite"
    return None


class FeedbackAttribution:
    def __init__(
        self,
        database: Database,
        impressions: ImpressionLog | None,
        *,
        topic: str,
        window_s: int,
    ) -> None:
        self._database = database
        self._impressions = impressions
        self._topic = topic
        self._window = timedelta(seconds=window_s)
        self.attributed = 0

    async def handle(self, records: list[Record]) -> None:
        by_user: dict[UUID, list[tuple[EventMessage, str]]] = defaultdict(list)
        for record in records:
            event = _decode(record)
            if event is not None and (action := implicit_action(event)) is not None:
                by_user[event.user_id].append((event, action))
        if not by_user:
            return
        if self._impressions is not None and self._impressions.pending:
            with contextlib.suppress(Exception):  # same-process impressions not yet written
                await self._impressions.flush()
        now = utc_now()
        async with self._database.transaction() as conn:
            erased = await SnapshotRepository(conn).erased(list(by_user))
            impressions = ImpressionRepository(conn)
            repository = FeedbackRepository(conn)
            rows: list[FeedbackRow] = []
            policies: dict[UUID, str] = {}
            for user_id, events in by_user.items():
                if user_id in erased:
                    continue
                events.sort(key=lambda pair: pair[0].sequence)
                first = events[0][0].server_timestamp - self._window
                shown = await impressions.of_user(
                    user_id, first, events[-1][0].server_timestamp, limit=1000
                )
                if not shown:
                    continue
                movies = list({e.movie_id for e, _ in events if e.movie_id is not None})
                done = await repository.implicit_since(user_id, movies, first)
                for event, action in events:
                    assert event.movie_id is not None
                    if (event.movie_id, action) in done:
                        continue
                    impression = _last_touch(shown, event, self._window)
                    if impression is None:
                        continue
                    done.add((event.movie_id, action))
                    rows.append(_row(event, action, impression, now))
                    policies[rows[-1].feedback_id] = impression.policy
            new = await repository.add_new(rows)
            await OutboxRepository(conn).add(
                [
                    feedback_message(r, topic=self._topic, policy=policies[r.feedback_id])
                    for r in new
                ],
                now,
            )
        self.attributed += len(new)
        if new:
            metrics.FEEDBACK.labels("implicit", "event").inc(len(new))


def _decode(record: Record) -> EventMessage | None:
    if record.value is None:
        return None
    try:
        return decode_event_message(record.value)
    except ValueError:  # the feature consumer dead-letters what cannot be decoded
        return None


def _last_touch(
    shown: list[Impression], event: EventMessage, window: timedelta
) -> Impression | None:
    """The newest impression (``shown`` is newest first) before the event, within the window,
    that contains the movie."""
    at: datetime = event.server_timestamp
    assert event.movie_id is not None
    for impression in shown:
        if impression.shown_at > at:
            continue
        if impression.shown_at < at - window:
            return None
        if impression.position_of(event.movie_id) is not None:
            return impression
    return None


def _row(event: EventMessage, action: str, impression: Impression, now: datetime) -> FeedbackRow:
    assert event.movie_id is not None
    watched = event.metadata.get("watchDuration") if action == "watch" else None
    return FeedbackRow(
        feedback_id=uuid.uuid4(),
        dedupe_key=f"i:{impression.recommendation_id}:{event.movie_id}:{action}",
        source="implicit",
        user_id=event.user_id,
        recommendation_id=impression.recommendation_id,
        join_method="event",
        action=action,
        context=impression.context,
        model_version=impression.model_version,
        impression_count=len(impression.items),
        clicked_item_id=event.movie_id,
        click_position=impression.position_of(event.movie_id),
        watch_time_sec=watched if isinstance(watched, int) else None,
        occurred_at=event.server_timestamp,
        received_at=now,
    )
