"""Serving a recommendation request within a time budget.

hydrate (features + cached list: one round trip, bounded by RECOMMEND_BUDGET_S)
  -> a cached list stamped with the current features and model versions: re-filtered for
     availability, served (`cached: true`)
  -> else the engine (CPU, a few ms; in a thread for very large catalogs), the list stored
     for next time without making the caller wait
Redis or the database slow or down: the budget expires and the answer comes from memory
(the model's popular/trending movies for the context, policy "<context>:fallback").
No model loaded: the popularity-only fallback model, same path.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import structlog

from interaction_recommender import metrics
from interaction_recommender.catalog.cache import CatalogCache
from interaction_recommender.feedback.impressions import ImpressionLog
from interaction_recommender.feedback.repository import Impression
from interaction_recommender.model.context import Context
from interaction_recommender.model.engine import EngineSettings, Recommendation, recommend
from interaction_recommender.recs.cached_list import CachedList
from interaction_recommender.recs.hydration import Hydrated, Hydrator
from interaction_recommender.recs.near_cache import NearCache
from interaction_recommender.recs.registry import LoadedModel, ModelRegistry
from interaction_recommender.wire import utc_now

__all__ = ["Answer", "RecommendationService"]

log = structlog.get_logger(__name__)

_THREAD_ABOVE_ITEMS = 20_000  # engine calls on bigger catalogs leave the event loop


@dataclass(frozen=True)
class Answer:
    recommendation_id: UUID
    user_id: UUID
    model_version: str
    policy: str
    cached: bool
    generated_at: datetime
    items_json: bytes
    """The inside of the `recommendations` array: the movies' JSON objects, joined."""
    shown: list[tuple[str, float]]
    """(movieId, the engine's score) per movie, best first."""


class RecommendationService:
    def __init__(
        self,
        registry: ModelRegistry,
        hydrator: Hydrator,
        catalog: CatalogCache,
        *,
        budget_s: float,
        max_k: int,
        engine: EngineSettings,
        impressions: ImpressionLog | None = None,
        near: NearCache | None = None,
    ) -> None:
        self._registry = registry
        self._max_k = max_k
        self._hydrator = hydrator
        self._catalog = catalog
        self._budget_s = budget_s
        self._engine = engine
        self._impressions = impressions
        self._near = near
        self._background: set[asyncio.Task[None]] = set()

    async def recommend(self, user_id: UUID, context: Context, k: int) -> Answer:
        """The best ``k`` (clamped to RECOMMEND_MAX_K) for the user in this context: from this
        process's near cache, else the Redis list cache, else the engine."""
        started = time.perf_counter()
        k = min(k, self._max_k)
        loaded = self._registry.serving()
        slot = f"{context.kind}:{context.movie_id or ''}|{k}"
        if self._near is not None:
            near = self._near.get(user_id, slot, loaded.model.version)
            if near is not None:
                metrics.RECOMMEND_CACHE.labels("near").inc()
                return self._answer(user_id, context, loaded, True, near, started)
        try:
            async with asyncio.timeout(self._budget_s):
                hydrated = await self._hydrator.hydrate(user_id, slot)
        except Exception as exc:  # slow or down: answer from memory, never hang the caller
            metrics.RECOMMEND_FALLBACKS.labels(type(exc).__name__).inc()
            log.warning("recommend_fallback", reason=type(exc).__name__)
            items = await self._run(None, context, k, loaded)
            fallback = CachedList.of(0, loaded.model.version, f"{context.kind}:fallback", items)
            return self._answer(user_id, context, loaded, False, fallback, started)
        metrics.RECOMMEND_STAGE.labels(context.kind, "hydrate").observe(
            time.perf_counter() - started
        )

        cached = hydrated.cached
        if (
            cached is not None
            and cached.features_version == hydrated.features_version
            and cached.model_version == loaded.model.version
        ):
            metrics.RECOMMEND_CACHE.labels("hit").inc()
            self._keep_near(user_id, slot, cached, started)
            return self._answer(user_id, context, loaded, True, cached, started)

        metrics.RECOMMEND_CACHE.labels("miss").inc()
        engine_started = time.perf_counter()
        picks = await self._run(hydrated, context, k, loaded)
        metrics.RECOMMEND_STAGE.labels(context.kind, "engine").observe(
            time.perf_counter() - engine_started
        )
        policy = context.policy if loaded.model.personalised else f"{context.kind}:fallback"
        listed = CachedList.of(hydrated.features_version, loaded.model.version, policy, picks)
        self._remember(user_id, slot, listed)
        self._keep_near(user_id, slot, listed, started)
        return self._answer(user_id, context, loaded, False, listed, started)

    def _keep_near(self, user_id: UUID, slot: str, listed: CachedList, started: float) -> None:
        if self._near is not None:
            # The entry's life counts from the request's start, before its Redis read.
            self._near.put(user_id, slot, listed, started=started)

    async def _run(
        self,
        hydrated: Hydrated | None,
        context: Context,
        k: int,
        loaded: LoadedModel,
    ) -> list[Recommendation]:
        def work() -> list[Recommendation]:
            profile = hydrated.profile() if hydrated is not None else None
            return recommend(
                profile,
                context,
                k,
                loaded.model,
                loaded.view,
                now=utc_now(),
                settings=self._engine,
            )

        if loaded.view.n_items > _THREAD_ABOVE_ITEMS:
            picks = await asyncio.to_thread(work)
        else:
            picks = work()
        return picks

    def _remember(self, user_id: UUID, slot: str, listed: CachedList) -> None:
        async def store() -> None:
            try:
                async with asyncio.timeout(self._budget_s):
                    await self._hydrator.store(user_id, slot, listed)
            except Exception as exc:  # a cache write is worth nothing late
                log.warning("recommend_cache_write_failed", error=type(exc).__name__)

        task = asyncio.create_task(store())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _answer(
        self,
        user_id: UUID,
        context: Context,
        loaded: LoadedModel,
        cached: bool,
        listed: CachedList,
        started: float,
    ) -> Answer:
        body, shown = listed.visible(self._catalog.hidden_ids)  # hidden since: dropped at once
        metrics.RECOMMEND_LATENCY.labels(listed.policy.split(":", 1)[0]).observe(
            time.perf_counter() - started
        )
        answer = Answer(
            uuid.uuid4(),
            user_id,
            loaded.model.version,
            listed.policy,
            cached,
            utc_now(),
            body,
            shown,
        )
        if self._impressions is not None:  # a buffer append: the write happens later
            self._impressions.record(
                Impression(
                    recommendation_id=answer.recommendation_id,
                    user_id=user_id,
                    context=context.label,
                    policy=answer.policy,
                    model_version=answer.model_version,
                    cached=cached,
                    items=shown,
                    shown_at=answer.generated_at,
                )
            )
        return answer
