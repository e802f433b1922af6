"""Wire schemas of the health routes (docs/contract.md: components are objects)."""

from __future__ import annotations

from typing import Literal

from interaction_recommender.wire import UtcTimestamp, WireModel

__all__ = ["Component", "HealthResponse"]


class Component(WireModel):
    status: Literal["healthy", "degraded", "unhealthy", "disabled"]
    latency_ms: float
    message: str


class HealthResponse(WireModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    version: str
    timestamp: UtcTimestamp
    components: dict[str, Component]
