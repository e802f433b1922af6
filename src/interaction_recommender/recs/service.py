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
from interaction_recommender.recs.hydration import CachedList, Hydrated, Hydrator
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
    items: list[tuple[UUID, float, list[str]]]


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
    ) -> None:
        self._registry = registry
        self._max_k = max_k
        self._hydrator = hydrator
        self._catalog = catalog
        self._budget_s = budget_s
        self._engine = engine
        self._impressions = impressions
        self._background: set[asyncio.Task[None]] = set()

    async def recommend(self, user_id: UUID, context: Context, k: int) -> Answer:
        """The best ``k`` (clamped to RECOMMEND_MAX_K) for the user in this context."""
        started = time.perf_counter()
        k = min(k, self._max_k)
        loaded = self._registry.serving()
        slot = f"{context.kind}:{context.movie_id or ''}|{k}"
        try:
            async with asyncio.timeout(self._budget_s):
                hydrated = await self._hydrator.hydrate(user_id, slot)
        except Exception as exc:  # slow or down: answer from memory, never hang the caller
            metrics.RECOMMEND_FALLBACKS.labels(type(exc).__name__).inc()
            log.warning("recommend_fallback", reason=type(exc).__name__)
            items = await self._run(None, context, k, loaded)
            policy = f"{context.kind}:fallback"
            return self._answer(user_id, context, loaded, policy, False, items, started)
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
            items = [
                (UUID(movie), score, reasons)
                for movie, score, reasons in cached.items
                if self._catalog.is_available(UUID(movie))  # hidden since: dropped at once
            ]
            return self._answer(user_id, context, loaded, cached.policy, True, items, started)

        metrics.RECOMMEND_CACHE.labels("miss").inc()
        engine_started = time.perf_counter()
        picks = await self._run(hydrated, context, k, loaded)
        metrics.RECOMMEND_STAGE.labels(context.kind, "engine").observe(
            time.perf_counter() - engine_started
        )
        policy = context.policy if loaded.model.personalised else f"{context.kind}:fallback"
        self._remember(user_id, slot, hydrated.features_version, loaded, policy, picks)
        return self._answer(user_id, context, loaded, policy, False, picks, started)

    async def _run(
        self,
        hydrated: Hydrated | None,
        context: Context,
        k: int,
        loaded: LoadedModel,
    ) -> list[tuple[UUID, float, list[str]]]:
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
        return [(p.movie_id, p.score, list(p.reasons)) for p in picks]

    def _remember(
        self,
        user_id: UUID,
        slot: str,
        features_version: int,
        loaded: LoadedModel,
        policy: str,
        items: list[tuple[UUID, float, list[str]]],
    ) -> None:
        cached = CachedList(
            features_version,
            loaded.model.version,
            policy,
            [(str(movie), score, reasons) for movie, score, reasons in items],
        )

        async def store() -> None:
            try:
                async with asyncio.timeout(self._budget_s):
                    await self._hydrator.store(user_id, slot, cached)
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
        policy: str,
        cached: bool,
        items: list[tuple[UUID, float, list[str]]],
        started: float,
    ) -> Answer:
        metrics.RECOMMEND_LATENCY.labels(policy.split(":", 1)[0]).observe(
            time.perf_counter() - started
        )
        answer = Answer(
            uuid.uuid4(), user_id, loaded.model.version, policy, cached, utc_now(), items
        )
        if self._impressions is not None:  # a buffer append: the write happens later
            self._impressions.record(
                Impression(
                    recommendation_id=answer.recommendation_id,
                    user_id=user_id,
                    context=context.label,
                    policy=policy,
                    model_version=answer.model_version,
                    cached=cached,
                    items=[(str(movie), score) for movie, score, _ in items],
                    shown_at=answer.generated_at,
                )
            )
        return answer
