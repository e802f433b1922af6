"""Health routes (no auth: orchestrators and the Java callers probe them)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from interaction_recommender import __version__
from interaction_recommender.deps import from_state
from interaction_recommender.health.probes import ComponentHealth, HealthChecker, overall
from interaction_recommender.health.schemas import Component, HealthResponse
from interaction_recommender.wire import utc_now

__all__ = ["HealthResponse", "router"]

router = APIRouter(tags=["health"])


Health = Annotated[HealthChecker, Depends(from_state("health"))]


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
async def health(checker: Health) -> Response:
    components = await checker.check()
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
async def ready(checker: Health) -> Response:
    ok, message = await checker.ready()
    status: Literal["healthy", "unhealthy"] = "healthy" if ok else "unhealthy"
    return _render(status, {"database": ComponentHealth(status, 0.0, message)})
