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
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import orjson
import structlog

from interaction_recommender import metrics
from interaction_recommender.bus.base import Record
from interaction_recommender.features.repository import SnapshotRepository
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


def implicit_action(event_type: object, metadata: dict[str, object]) -> str | None:
    """What an event says about the movie it names, or None (searches, unfavorites)."""
    if event_type in ("watch", "rating"):
        return str(event_type)
    if event_type == "favorite" and metadata.get("action") != "remove":
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
        engaged = [e for e in map(_engagement, records) if e is not None]
        if not engaged:
            return
        if self._impressions is not None and self._impressions.pending:
            with contextlib.suppress(Exception):  # same-process impressions not yet written
                await self._impressions.flush()
        engaged.sort(key=lambda e: e.sequence)
        users = list({e.user_id for e in engaged})
        since = min(e.at for e in engaged) - self._window
        until = max(e.at for e in engaged)
        now = utc_now()
        async with self._database.transaction() as conn:
            erased = await SnapshotRepository(conn).erased(users)
            shown = await ImpressionRepository(conn).of_users(users, since, until)
            if not shown:
                return
            repository = FeedbackRepository(conn)
            done = await repository.implicit_since(list(shown), since)
            rows: list[FeedbackRow] = []
            policies: dict[UUID, str] = {}
            for event in engaged:
                key = (event.user_id, event.movie_id, event.action)
                if event.user_id in erased or key in done:
                    continue
                impression = _last_touch(shown.get(event.user_id, []), event, self._window)
                if impression is None:
                    continue
                done.add(key)
                rows.append(_row(event, impression, now))
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


@dataclass(frozen=True, slots=True)
class Engagement:
    """What attribution needs of an event: read straight from the JSON, without validating the
    whole message (searches, most events of a stream, cost one parse)."""

    sequence: int
    user_id: UUID
    movie_id: UUID
    action: str  # watch | rating | favorite
    at: datetime  # serverTimestamp
    watch_seconds: int | None


def _engagement(record: Record) -> Engagement | None:
    """The engagement an event carries, or None (a search, an unfavorite, a message the feature
    stage will dead-letter)."""
    if record.value is None:
        return None
    try:
        value = orjson.loads(record.value)
        action = implicit_action(value.get("eventType"), value.get("metadata") or {})
        if action is None or value.get("movieId") is None:
            return None
        seconds = (value.get("metadata") or {}).get("watchDuration")
        at = datetime.fromisoformat(value["serverTimestamp"])
        if at.tzinfo is None:
            return None  # not one of our messages (the feature stage dead-letters it)
        return Engagement(
            sequence=int(value["sequence"]),
            user_id=UUID(value["userId"]),
            movie_id=UUID(value["movieId"]),
            action=action,
            at=at,
            watch_seconds=seconds if isinstance(seconds, int) and action == "watch" else None,
        )
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        return None


def _last_touch(shown: list[Impression], event: Engagement, window: timedelta) -> Impression | None:
    """The newest impression (``shown`` is newest first) before the event, within the window,
    that contains the movie."""
    at = event.at
    for impression in shown:
        if impression.shown_at > at:
            continue
        if impression.shown_at < at - window:
            return None
        if impression.position_of(event.movie_id) is not None:
            return impression
    return None


def _row(event: Engagement, impression: Impression, now: datetime) -> FeedbackRow:
    return FeedbackRow(
        feedback_id=uuid.uuid4(),
        dedupe_key=f"i:{impression.recommendation_id}:{event.movie_id}:{event.action}",
        source="implicit",
        user_id=event.user_id,
        recommendation_id=impression.recommendation_id,
        join_method="event",
        action=event.action,
        context=impression.context,
        model_version=impression.model_version,
        impression_count=len(impression.items),
        clicked_item_id=event.movie_id,
        click_position=impression.position_of(event.movie_id),
        watch_time_sec=event.watch_seconds,
        occurred_at=event.at,
        received_at=now,
    )
