"""Wire schemas of the feedback routes (docs/contract.md)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field

from interaction_recommender.wire import Instant, UtcTimestamp, WireModel, check_text, dumps

__all__ = ["MAX_IMPRESSIONS", "FeedbackRequest", "FeedbackResponse"]

MAX_IMPRESSIONS = 500
_JAVA_INT_MAX = 2**31 - 1

ShortText = Annotated[str, Field(max_length=200), AfterValidator(check_text)]


class FeedbackRequest(WireModel):
    user_id: UUID
    model_version: ShortText | None = None
    impression_list: list[UUID] = Field(default_factory=list, max_length=MAX_IMPRESSIONS)
    clicked_item_id: UUID | None = None
    watch_time_sec: int | None = Field(default=None, ge=0, le=_JAVA_INT_MAX)
    timestamp: Instant | None = None
    context: ShortText | None = None  # free text, never checked against a list
    request_id: UUID | None = None
    recommendation_id: UUID | None = None
    action: Literal["click", "watch", "dismiss", "like"] | None = None

    def dedupe_key(self) -> str:
        """The requestId when given; otherwise a hash of the whole content, so that a retry of
        the same body is recognised (and a different body is not)."""
        if self.request_id is not None:
            return f"r:{self.request_id}"
        content = self.model_dump(mode="json", exclude={"request_id"})
        return "h:" + hashlib.sha256(dumps(content)).hexdigest()


class FeedbackResponse(WireModel):
    feedback_id: UUID
    status: str  # recorded | duplicate
    processed_at: UtcTimestamp
    recommendation_id: UUID | None
    join_method: str
