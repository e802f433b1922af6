"""create_app(): routes, error handling, and the lifespan that builds every client once."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from interaction_recommender import __version__
from interaction_recommender.bus import Bus, Topics, build_bus
from interaction_recommender.bus.consumer import ConsumerLoop
from interaction_recommender.catalog.cache import CatalogCache
from interaction_recommender.catalog.endpoints import router as catalog_router
from interaction_recommender.catalog.placeholders import PLACEHOLDER_GROUP, PlaceholderCreator
from interaction_recommender.demo.loader import database_is_empty, load_world
from interaction_recommender.demo.world import generate_world
from interaction_recommender.deps import Runtime, require_api_token
from interaction_recommender.errors import install_error_handlers
from interaction_recommender.events.batcher import IngestBatcher
from interaction_recommender.events.endpoints import router as events_router
from interaction_recommender.events.factory import build_event_store
from interaction_recommender.events.store import EventStore
from interaction_recommender.health import HealthChecker
from interaction_recommender.health.endpoints import router as health_router
from interaction_recommender.http import API_PREFIX, EdgeMiddleware, OrjsonRoute
from interaction_recommender.outbox import OutboxRelay
from interaction_recommender.settings import Settings
from interaction_recommender.storage import Database, migrate

__all__ = ["create_app"]

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            runtime = await _start(settings, stack)
            app.state.runtime = runtime
            app.state.health = HealthChecker(
                database=runtime.database,
                bus=runtime.bus,
                relay=runtime.relay,
                redis=runtime.redis,
                timeout_s=settings.health_probe_timeout_s,
                outbox_degraded_age_s=settings.outbox_degraded_age_s,
            )
            app.state.health.watch_consumers(runtime.consumers)
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

    app = FastAPI(
        title="Cinemate interaction-recommender",
        version=__version__,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.max_event_body_bytes,
        max_batch_body_bytes=settings.max_batch_body_bytes,
        access_log=settings.access_log,
    )

    # Token checks only when tokens are configured (a dependency costs on every request).
    api = APIRouter(
        route_class=OrjsonRoute,
        dependencies=[Depends(require_api_token)] if settings.api_tokens else [],
    )
    api.include_router(events_router)
    api.include_router(catalog_router)

    operations = APIRouter()
    operations.include_router(health_router)
    operations.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)

    # contract.md: every route answers with and without the /api/v1 prefix: the same handlers
    # and auth, registered twice (only the prefixed copy is in the OpenAPI document).
    for router in (api, operations):
        app.include_router(router, prefix=API_PREFIX)
        app.include_router(router, include_in_schema=False)
    return app


async def _start(settings: Settings, stack: AsyncExitStack) -> Runtime:
    """Build every client; the exit stack closes them in reverse order on shutdown."""
    database = Database(settings)
    stack.push_async_callback(database.dispose)
    if settings.migrate_on_start:
        await migrate(database.engine)

    topics = Topics.with_prefix(settings.kafka_topic_prefix)
    bus = build_bus(settings)
    await bus.start()
    stack.push_async_callback(bus.stop)

    redis = _redis_client(settings)
    if redis is not None:
        stack.push_async_callback(redis.aclose)

    relay = OutboxRelay(
        database,
        bus,
        batch_size=settings.relay_batch_size,
        idle_poll_s=settings.relay_idle_poll_s,
        linger_s=settings.relay_linger_s,
        max_backoff_s=settings.relay_max_backoff_s,
        retention_s=settings.outbox_retention_s,
    )
    relay.start()
    # Registered after the bus so it runs before it on shutdown: flush while the bus is up.
    stack.push_async_callback(relay.stop)

    events = build_event_store(database, settings)
    if settings.load_demo_world and await database_is_empty(database):
        await _load_demo_world(settings, database, events, topics)

    catalog = CatalogCache(database, poll_s=settings.catalog_poll_s)
    await _first_catalog_load(catalog)
    catalog.start()
    stack.push_async_callback(catalog.stop)

    consumers = _consumers(settings, database, bus, topics, catalog)
    for consumer in consumers:
        consumer.start()
        stack.push_async_callback(consumer.stop)

    return Runtime(
        settings=settings,
        database=database,
        events=events,
        single_events=IngestBatcher(
            events,
            topic=topics.interaction_events,
            max_batch=settings.ingest_group_max_batch,
            max_in_flight=settings.ingest_group_max_in_flight,
        ),
        bus=bus,
        topics=topics,
        relay=relay,
        redis=redis,
        catalog=catalog,
        consumers=consumers,
    )


async def _load_demo_world(
    settings: Settings, database: Database, events: EventStore, topics: Topics
) -> None:
    """First start of the embedded mode: a synthetic world, ending today, so that a newcomer
    sees recommendations at once (DEMO_DATA=false turns it off)."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    world = generate_world(
        settings.demo_seed, movies=settings.demo_movies, users=settings.demo_users, end=end
    )
    log.info("demo_world_loading", movies=len(world.movies), events=len(world.events))
    movies, stored = await load_world(
        world,
        database=database,
        events=events,
        event_topic=topics.interaction_events,
        catalog_topic=topics.movie_catalog,
    )
    log.info("demo_world_loaded", movies=movies, events=stored)


async def _first_catalog_load(catalog: CatalogCache) -> None:
    try:
        await catalog.refresh()
    except Exception as exc:  # the database may be down or not migrated yet: the poller retries
        log.warning("catalog_not_loaded_at_start", error=type(exc).__name__)


def _consumers(
    settings: Settings, database: Database, bus: Bus, topics: Topics, catalog: CatalogCache
) -> list[ConsumerLoop]:
    """The stages that consume `interaction_events` in this process. With Kafka they run only
    when ENABLE_CONSUMERS is on (otherwise `recommender worker` runs them); the in-process bus
    has no other consumer, so they always run in the embedded mode."""
    if bus.name == "kafka" and not settings.enable_consumers:
        return []
    placeholders = PlaceholderCreator(database, catalog, topic=topics.movie_catalog)
    return [
        ConsumerLoop(
            "catalog-placeholders",
            bus.subscribe([topics.interaction_events], PLACEHOLDER_GROUP),
            placeholders.handle,
        )
    ]


def _redis_client(settings: Settings) -> Any | None:
    if settings.redis_url is None:
        return None
    from redis.asyncio import Redis

    return Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.health_probe_timeout_s,
        socket_timeout=settings.health_probe_timeout_s,
        health_check_interval=30,
    )


async def _metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
