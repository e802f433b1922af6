"""create_app(): routes, error handling, and the lifespan that builds every client once."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import structlog
from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from interaction_recommender import __version__
from interaction_recommender.catalog.endpoints import router as catalog_router
from interaction_recommender.deadletter.endpoints import router as deadletter_router
from interaction_recommender.deps import require_admin, require_api_token
from interaction_recommender.events.endpoints import router as events_router
from interaction_recommender.features.endpoints import router as features_router
from interaction_recommender.feedback.endpoints import router as feedback_router
from interaction_recommender.health import HealthChecker
from interaction_recommender.health.endpoints import router as health_router
from interaction_recommender.http import (
    API_PREFIX,
    EdgeMiddleware,
    OrjsonRoute,
    install_error_handlers,
)
from interaction_recommender.recs.endpoints import router as recs_router
from interaction_recommender.runtime import build_runtime
from interaction_recommender.settings import Settings
from interaction_recommender.users.endpoints import router as users_router

__all__ = ["create_app"]

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            # With Kafka, consumers run here only when ENABLE_CONSUMERS is on (else in
            # `recommender worker`); the in-process bus has no other consumer.
            runtime = await build_runtime(
                settings,
                stack,
                run_consumers=settings.enable_consumers or not settings.enable_kafka,
            )
            for field in dataclasses.fields(runtime):  # each route reads the one it uses
                setattr(app.state, field.name, getattr(runtime, field.name))
            app.state.health = HealthChecker(
                database=runtime.database,
                bus=runtime.bus,
                relay=runtime.relay,
                redis=runtime.redis,
                timeout_s=settings.health_probe_timeout_s,
                outbox_degraded_age_s=settings.outbox_degraded_age_s,
            )
            app.state.health.watch_model(runtime.registry)
            app.state.health.watch_consumers(
                runtime.consumers, stuck_after_s=settings.consumer_stuck_after_s
            )
            # Everything built so far lives as long as the process: keep it out of the cyclic
            # GC's view, so full collections under load scan only new objects (p99 tail).
            gc.freeze()
            log.info(
                "service_started",
                version=__version__,
                database=runtime.database.dialect,
                bus=runtime.bus.name,
                redis=runtime.redis is not None,
            )
            yield
            log.info("service_stopping")

    restricted = settings.restrict_docs_and_metrics
    app = FastAPI(
        title="Cinemate interaction-recommender",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None if restricted else f"{API_PREFIX}/openapi.json",
        docs_url=None if restricted else f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.max_event_body_bytes,
        max_batch_body_bytes=settings.max_batch_body_bytes,
        access_log=settings.access_log,
        log_json=settings.log_json,
    )

    # Token checks only when tokens are configured (a dependency costs on every request).
    api = APIRouter(
        route_class=OrjsonRoute,
        dependencies=[Depends(require_api_token)] if settings.api_tokens else [],
    )
    api.include_router(events_router)
    api.include_router(catalog_router)
    api.include_router(features_router)
    api.include_router(recs_router)
    api.include_router(feedback_router)
    api.include_router(users_router)
    api.include_router(deadletter_router)

    operations = APIRouter()
    operations.include_router(health_router)
    admin_only = [Depends(require_admin)] if restricted else []
    operations.add_api_route(
        "/metrics", _metrics, methods=["GET"], include_in_schema=False, dependencies=admin_only
    )
    if restricted:  # the documentation behind the admin token (FastAPI's own routes are off)

        async def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())

        async def docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url=f"{API_PREFIX}/openapi.json", title=app.title)

        app.add_api_route(
            f"{API_PREFIX}/openapi.json", openapi, include_in_schema=False, dependencies=admin_only
        )
        app.add_api_route(
            f"{API_PREFIX}/docs", docs, include_in_schema=False, dependencies=admin_only
        )

    # docs/contract.md: every route answers with and without the /api/v1 prefix: the same handlers
    # and auth, registered twice (only the prefixed copy is in the OpenAPI document).
    for router in (api, operations):
        app.include_router(router, prefix=API_PREFIX)
        app.include_router(router, include_in_schema=False)
    return app


async def _metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
