"""Wire schemas of the dead-letter admin routes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from interaction_recommender.wire import WireModel

__all__ = ["ReplayRequest", "ReplayResponse"]


DeadLetterId = Annotated[int, Field(ge=1, le=2**63 - 1)]
"""A dead letter's id: a positive 64-bit integer (the table's primary key)."""


class ReplayRequest(WireModel):
    ids: list[DeadLetterId] | None = Field(default=None, max_length=10_000)
    all: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> ReplayRequest:
        if (self.ids is None) == (not self.all):
            raise ValueError('give either "ids" or "all": true')
        return self


class ReplayResponse(WireModel):
    replayed: list[int]
