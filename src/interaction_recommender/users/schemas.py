"""Wire schemas of the user routes."""

from __future__ import annotations

from uuid import UUID

from interaction_recommender.wire import UtcTimestamp, WireModel

__all__ = ["ErasureResponse"]


class ErasureResponse(WireModel):
    user_id: UUID
    status: str
    erased_at: UtcTimestamp
