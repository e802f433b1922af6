"""Health routes (no auth: orchestrators and the Java callers probe them)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from interaction_recommender import __version__
from interaction_recommender.health.probes import ComponentHealth, HealthChecker, overall
from interaction_recommender.wire import UtcTimestamp, WireModel, utc_now

__all__ = ["HealthResponse", "router"]

router = APIRouter(tags=["health"])


class Component(WireModel):
    status: Literal["healthy", "degraded", "unhealthy", "disabled"]
    latency_ms: float
    message: str


class HealthResponse(WireModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    version: str
    timestamp: UtcTimestamp
    components: dict[str, Component]


def _checker(request: Request) -> HealthChecker:
    checker: HealthChecker = request.app.state.health
    return checker


def _render(
    status: Literal["healthy", "degraded", "unhealthy"], components: dict[str, ComponentHealth]
) -> Response:
    body = HealthResponse(
        status=status,
        version=__version__,
        timestamp=utc_now(),
        components={
            name: Component(status=c.status, latency_ms=c.latency_ms, message=c.message)
            for name, c in components.items()
        },
    )
    return Response(
        body.model_dump_json(by_alias=True),
        status_code=503 if status == "unhealthy" else 200,
        media_type="application/json",
    )


_RESPONSES: dict[int | str, dict[str, object]] = {
    503: {"model": HealthResponse, "description": "Unhealthy: the database is unreachable."}
}


@router.get(
    "/health", response_model=HealthResponse, responses=_RESPONSES, summary="Full health check"
)
async def health(request: Request) -> Response:
    components = await _checker(request).check()
    return _render(overall(components), components)


@router.get("/health/live", response_model=HealthResponse, summary="Liveness: the process answers")
async def live() -> Response:
    return _render("healthy", {})


@router.get(
    "/health/ready",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Not ready yet."}},
    summary="Readiness: migrations applied and the database answers",
)
async def ready(request: Request) -> Response:
    ok, message = await _checker(request).ready()
    status: Literal["healthy", "unhealthy"] = "healthy" if ok else "unhealthy"
    return _render(status, {"database": ComponentHealth(status, 0.0, message)})
