"""The `model_feedback` message (schema in docs/topics.md): one per stored feedback row, explicit
or implicit, with the metrics offline training reads. Bump SCHEMA_VERSION on an incompatible
change."""

from __future__ import annotations

from interaction_recommender.feedback.repository import FeedbackRow
from interaction_recommender.outbox.repository import OutboxMessage
from interaction_recommender.wire import dumps

__all__ = ["SCHEMA_VERSION", "engagement_level", "feedback_message"]

SCHEMA_VERSION = 1
DEEP_WATCH_S = 20 * 60  # a watch this long is a strong signal (a typical episode or more)


def engagement_level(row: FeedbackRow) -> str:
    """none < clicked < watched < deep; `dismissed` when the user said no."""
    if row.action == "dismiss":
        return "dismissed"
    if row.action in ("like", "favorite") or (row.watch_time_sec or 0) >= DEEP_WATCH_S:
        return "deep"
    if row.action == "watch" or (row.watch_time_sec or 0) > 0:
        return "watched"
    if is_click(row):
        return "clicked"
    return "none"


def is_click(row: FeedbackRow) -> bool:
    """An explicit click on a shown item (implicit rows are watches, ratings, favorites)."""
    return (
        row.source == "explicit"
        and row.action != "dismiss"
        and (row.clicked_item_id is not None or row.action == "click")
    )


def is_watch(row: FeedbackRow) -> bool:
    return row.action == "watch" or (row.watch_time_sec or 0) > 0


def feedback_message(row: FeedbackRow, *, topic: str, policy: str | None) -> OutboxMessage:
    document = {
        "schemaVersion": SCHEMA_VERSION,
        "feedbackId": row.feedback_id,
        "source": row.source,
        "userId": row.user_id,
        "recommendationId": row.recommendation_id,
        "joinMethod": row.join_method,
        "modelVersion": row.model_version,
        "context": row.context,
        "policy": policy,
        "action": row.action,
        "impressionCount": row.impression_count,
        "clicked": is_click(row),
        "clickedItemId": row.clicked_item_id,
        "clickPosition": row.click_position,
        "watchTimeSec": row.watch_time_sec,
        "engagementLevel": engagement_level(row),
        "occurredAt": row.occurred_at,
        "receivedAt": row.received_at,
    }
    return OutboxMessage(topic=topic, key=str(row.user_id), payload=dumps(document))
