"""Everything a process builds once: clients, stores, background loops. The HTTP app (`serve`)
and the worker (`recommender worker`) build the same runtime; they differ in what they run."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from interaction_recommender.bus import Bus, Topics, build_bus
from interaction_recommender.bus.base import Message
from interaction_recommender.bus.consumer import ConsumerLoop, Handler
from interaction_recommender.bus.memory import MemoryBus
from interaction_recommender.bus.topics import retry_topic
from interaction_recommender.catalog.cache import CatalogCache
from interaction_recommender.catalog.placeholders import PlaceholderCreator
from interaction_recommender.catalog.service import CatalogService
from interaction_recommender.deadletter.messages import max_original_bytes
from interaction_recommender.deadletter.service import DeadLetterService
from interaction_recommender.demo.loader import database_is_empty, load_world
from interaction_recommender.demo.world import generate_world
from interaction_recommender.events.factory import build_event_store
from interaction_recommender.events.service import EventIngest
from interaction_recommender.events.store import EventStore
from interaction_recommender.features.consumer import FeatureConsumer
from interaction_recommender.features.repository import SnapshotRepository, unapplied_events
from interaction_recommender.features.service import FeatureService
from interaction_recommender.features.store import (
    FeatureStore,
    MemoryFeatureStore,
    RedisFeatureStore,
)
from interaction_recommender.feedback.attribution import FeedbackAttribution
from interaction_recommender.feedback.impressions import ImpressionLog
from interaction_recommender.feedback.service import FeedbackService
from interaction_recommender.model.bundle import BundleError
from interaction_recommender.model.engine import EngineSettings
from interaction_recommender.model.keys import ensure_stored_key
from interaction_recommender.outbox import OutboxRelay
from interaction_recommender.recs.hydration import Hydrator, MemoryHydrator, RedisHydrator
from interaction_recommender.recs.near_cache import NearCache
from interaction_recommender.recs.registry import ModelRegistry
from interaction_recommender.recs.service import RecommendationService
from interaction_recommender.settings import Settings
from interaction_recommender.storage import Database, migrate
from interaction_recommender.training.scheduled import train_from_database
from interaction_recommender.users.erasure import (
    CachesStep,
    DatabaseStep,
    ErasureJobs,
    OnlineFeaturesStep,
)

__all__ = ["Runtime", "build_runtime"]

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    """Every long-lived object of one process. The HTTP app publishes each field on ``app.state``
    under its own name (routes read the one they use: deps.py); the worker uses it directly."""

    settings: Settings
    database: Database
    events: EventStore
    ingest: EventIngest
    bus: Bus
    topics: Topics
    relay: OutboxRelay
    redis: Any | None  # redis.asyncio.Redis when REDIS_URL is set
    catalog: CatalogCache
    movies: CatalogService
    feature_store: FeatureStore
    features: FeatureService
    consumers: list[ConsumerLoop]
    registry: ModelRegistry
    hydrator: Hydrator
    near_cache: NearCache | None  # with Redis and NEAR_CACHE_TTL_S > 0
    recommendations: RecommendationService
    impressions: ImpressionLog | None  # None when IMPRESSION_LOGGING=false
    feedback: FeedbackService
    dead_letters: DeadLetterService
    erasure: ErasureJobs


async def build_runtime(
    settings: Settings, stack: AsyncExitStack, *, run_consumers: bool, serving: bool = True
) -> Runtime:
    """Build and start everything; ``stack`` stops it in reverse order (consumers first, the
    relay's final flush while the bus is still up, the database last)."""
    database = Database(settings)
    stack.push_async_callback(database.dispose)
    if settings.migrate_on_start:
        await migrate(database)
        await ensure_stored_key(settings, database)

    topics = Topics.with_prefix(settings.kafka_topic_prefix)
    bus = build_bus(settings)
    await bus.start()
    stack.push_async_callback(bus.stop)

    redis = _redis_client(settings)
    if redis is not None:
        stack.push_async_callback(redis.aclose)
    feature_store: FeatureStore
    hydrator: Hydrator
    if redis is not None:
        prefix = settings.redis_key_prefix
        feature_store = RedisFeatureStore(redis, prefix=prefix, ttl_s=settings.features_ttl_s)
        hydrator = RedisHydrator(
            redis, feature_store, prefix=prefix, ttl_s=settings.recommend_cache_ttl_s
        )
    else:
        memory = MemoryFeatureStore()
        feature_store, hydrator = memory, MemoryHydrator(memory)

    if isinstance(bus, MemoryBus):
        await _catch_up(database, bus, topics)  # before the relay: per-user order holds
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
    stack.push_async_callback(relay.stop)

    events = build_event_store(database, settings)
    if settings.load_demo_world and await database_is_empty(database):
        await _load_demo_world(settings, database, events, topics)

    catalog = CatalogCache(database, poll_s=settings.catalog_poll_s)
    await _first_catalog_load(catalog)
    catalog.start()
    stack.push_async_callback(catalog.stop)

    if isinstance(feature_store, MemoryFeatureStore):
        await _warm(feature_store, database)

    impressions = None
    if settings.impression_logging:
        impressions = ImpressionLog(
            database,
            capacity=settings.impression_buffer,
            batch=settings.impression_batch,
            flush_s=settings.impression_flush_s,
            retention_days=settings.feedback_retention_days,
        )
        impressions.start()
        stack.push_async_callback(impressions.stop)  # the last batch, before the database goes

    consumers = (
        _consumers(settings, database, bus, topics, catalog, feature_store, impressions)
        if run_consumers
        else []
    )
    for consumer in consumers:
        consumer.start()
        stack.push_async_callback(consumer.stop)

    registry = ModelRegistry(settings, catalog, database)
    try:
        await registry.reload()
    except BundleError:
        pass  # no model or a refused one: the fallback serves (last_error says why)
    except Exception as exc:  # the database is down or not migrated: the poll tries again
        log.warning("model_store_unavailable_at_start", error=type(exc).__name__)
    registry.start()
    stack.push_async_callback(registry.stop)
    near_cache = None
    if serving and redis is not None and settings.near_cache_ttl_s > 0:
        near_cache = NearCache(
            redis,
            prefix=settings.redis_key_prefix,
            ttl_s=settings.near_cache_ttl_s,
            max_entries=settings.near_cache_max_entries,
        )
        near_cache.start()
        stack.push_async_callback(near_cache.stop)
    if settings.load_demo_world and registry.current is None:
        # The embedded mode's first start: train the demo model in the background (the
        # popularity fallback serves meanwhile); the registry swaps it in when it is written.
        task = asyncio.create_task(_train_demo_model(settings, database, registry))
        stack.push_async_callback(_cancel, task)

    erasure = ErasureJobs(
        database,
        [
            DatabaseStep(database, topics.processed_features),
            OnlineFeaturesStep(feature_store),
            CachesStep([hydrator] if near_cache is None else [hydrator, near_cache], impressions),
            DatabaseStep(
                database,
                topics.processed_features,
                name="sweep",
                delay_s=settings.erasure_sweep_after_s,
            ),
        ],
        poll_s=settings.erasure_poll_s,
        max_backoff_s=settings.erasure_max_backoff_s,
    )
    erasure.start()  # every process: a job left pending by one that died is finished by another
    stack.push_async_callback(erasure.stop)

    return Runtime(
        settings=settings,
        database=database,
        events=events,
        ingest=EventIngest(
            events,
            topic=topics.interaction_events,
            max_batch=settings.ingest_group_max_batch,
            max_in_flight=settings.ingest_group_max_in_flight,
            max_pending=settings.ingest_queue_max,
            max_message_bytes=max_original_bytes(settings.kafka_max_request_size),
        ),
        bus=bus,
        topics=topics,
        relay=relay,
        redis=redis,
        catalog=catalog,
        movies=CatalogService(database, topic=topics.movie_catalog),
        feature_store=feature_store,
        features=FeatureService(database, feature_store, catalog),
        consumers=consumers,
        registry=registry,
        hydrator=hydrator,
        near_cache=near_cache,
        recommendations=RecommendationService(
            registry,
            hydrator,
            catalog,
            budget_s=settings.recommend_budget_s,
            max_k=settings.recommend_max_k,
            engine=EngineSettings.from_settings(settings),
            impressions=impressions,
            near=near_cache,
        ),
        impressions=impressions,
        feedback=FeedbackService(
            database,
            impressions,
            catalog,
            topic=topics.model_feedback,
            join_window_s=settings.feedback_join_window_s,
        ),
        dead_letters=DeadLetterService(database),
        erasure=erasure,
    )


def _consumers(
    settings: Settings,
    database: Database,
    bus: Bus,
    topics: Topics,
    catalog: CatalogCache,
    store: FeatureStore,
    impressions: ImpressionLog | None,
) -> list[ConsumerLoop]:
    placeholders = PlaceholderCreator(database, catalog, topic=topics.movie_catalog)
    features = FeatureConsumer(
        database,
        store,
        catalog,
        bus,
        features_topic=topics.processed_features,
        dlq_topic=topics.interaction_events_dlq,
        attempts=settings.features_attempts,
        group=settings.features_consumer_group,
    )
    attribution = FeedbackAttribution(
        database,
        impressions,
        topic=topics.model_feedback,
        window_s=settings.attribution_window_s,
    )
    dead_letters = DeadLetterService(database)

    def loop(name: str, group: str, handler: Handler) -> ConsumerLoop:
        # Each group reads the events and its own retry topic, where replays for it go.
        events = topics.interaction_events
        return ConsumerLoop(
            name,
            bus.subscribe([events, retry_topic(events, group)], group),
            handler,
            on_poison=dead_letters.poison_handler(group, dlq_topic=topics.interaction_events_dlq),
        )

    return [
        loop("features", settings.features_consumer_group, features.handle),
        loop("catalog-placeholders", settings.catalog_consumer_group, placeholders.handle),
        loop("feedback-attribution", settings.attribution_consumer_group, attribution.handle),
    ]


async def _train_demo_model(
    settings: Settings, database: Database, registry: ModelRegistry
) -> None:
    try:
        if await train_from_database(settings, database) is not None:
            await registry.reload()
    except Exception:  # the fallback keeps serving; the log says why
        log.exception("demo_model_training_failed")


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _catch_up(database: Database, bus: MemoryBus, topics: Topics) -> None:
    """The embedded mode's in-process log dies with the process: events stored before a stop
    whose messages no consumer applied are published again, in sequence order, before anything
    else (the consumers skip what their watermarks already cover)."""
    try:
        async with database.transaction() as conn:
            events = await unapplied_events(conn)
    except Exception as exc:  # not migrated yet (a first start): nothing to catch up
        log.warning("catch_up_skipped", error=type(exc).__name__)
        return
    if not events:
        return
    messages = [e.to_message(topics.interaction_events) for e in events]
    await bus.publish(
        [Message(m.topic, m.key.encode() if m.key else None, m.payload) for m in messages]
    )
    log.info("embedded_catch_up", events=len(events))


async def _warm(store: MemoryFeatureStore, database: Database) -> None:
    """The embedded mode's in-memory store starts from the durable snapshot."""
    try:
        async with database.transaction() as conn:
            snapshots = await SnapshotRepository(conn).load_all()
    except Exception as exc:  # not migrated yet or down: reads fall back to the snapshot anyway
        log.warning("feature_store_not_warmed", error=type(exc).__name__)
        return
    await store.put_many(snapshots)
    log.info("feature_store_warmed", users=len(snapshots))


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
