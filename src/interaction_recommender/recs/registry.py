"""The model a process serves: loaded, verified, warmed up, swapped atomically; and the catalog
view that goes with it.

- Load = manifest → sha256 and schema → unpickle → type/shape checks (model/artifact.py) →
  warm-up (one real call of the engine) → swap: requests read ``registry.current`` once, so a
  request in flight keeps the model it started with and no request fails during a swap.
- A broken, truncated or mismatched artifact is rejected and the current model keeps serving.
- Every process polls the manifest (``MODEL_POLL_S``) and picks up a new version by itself;
  `POST /model/reload` does the same at once. Paths never come from a caller.
- The catalog view (arrays aligned with the model) is rebuilt in a worker thread whenever the
  catalog or the model changed, so availability changes reach recommendations within the catalog
  poll plus a rebuild (well under 10 s).
- Loading and rebuilding run in threads: they take tens of milliseconds to seconds, never on
  the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import numpy as np
import structlog

from interaction_recommender import metrics
from interaction_recommender.background import BackgroundLoop
from interaction_recommender.catalog.cache import CatalogCache
from interaction_recommender.events.repository import recent_movie_counts
from interaction_recommender.model.arrays import RecommenderModel, popularity_model
from interaction_recommender.model.artifact import ArtifactError, load_artifact, read_manifest
from interaction_recommender.model.catalog_view import CatalogView, build_catalog_view
from interaction_recommender.model.context import Context
from interaction_recommender.model.engine import recommend
from interaction_recommender.storage.database import Database

__all__ = ["LoadedModel", "ModelRegistry", "ReloadResult"]

log = structlog.get_logger(__name__)

_FALLBACK_REFRESH_S = 600.0


def _counts(model: RecommenderModel) -> list[int]:
    return [int(c) for c in np.rint(np.expm1(model.popularity))]


@dataclass(frozen=True)
class LoadedModel:
    model: RecommenderModel
    manifest: dict[str, Any]
    loaded_at: datetime
    view: CatalogView


@dataclass(frozen=True)
class ReloadResult:
    status: Literal["reloaded", "unchanged"]
    previous_version: str | None
    new_version: str | None


class ModelRegistry(BackgroundLoop):
    def __init__(
        self, model_path: Path, catalog: CatalogCache, database: Database, *, poll_s: float
    ) -> None:
        super().__init__("model-poll")
        self._path = model_path
        self._catalog = catalog
        self._database = database
        self._fallback: LoadedModel | None = None
        self._fallback_counted_at = 0.0
        self._poll_s = poll_s
        self._lock = asyncio.Lock()
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        metrics.MODEL_INFO.info({"version": "fallback", "status": "fallback", "loaded_at": ""})

    @property
    def path(self) -> Path:
        return self._path

    def serving(self) -> LoadedModel:
        """What requests use now: the loaded model, else the popularity-only fallback."""
        if self.current is not None:
            return self.current
        fallback = self._fallback
        if fallback is None or fallback.view.catalog_version != self._catalog.version:
            counts = dict.fromkeys((m.movie_id for m in self._catalog.movies()), 0)
            if fallback is not None:
                counts |= dict(zip(fallback.model.item_ids, _counts(fallback.model), strict=True))
            fallback = self._fallback = self._fallback_from(counts)
        return fallback

    def _fallback_from(self, counts: dict[UUID, int]) -> LoadedModel:
        model = popularity_model(counts)
        view = build_catalog_view(
            model, self._catalog.movies(), catalog_version=self._catalog.version
        )
        return LoadedModel(model, {"version": model.version}, datetime.now(UTC), view)

    async def _refresh_fallback(self) -> None:
        """Without a model: count recent interactions per movie now and then (a scan of the
        recent events, every FALLBACK_REFRESH_S, never on the request path)."""
        if (
            self.current is not None
            or time.monotonic() - self._fallback_counted_at < _FALLBACK_REFRESH_S
        ):
            return
        self._fallback_counted_at = time.monotonic()
        async with self._database.transaction() as conn:
            counts = await recent_movie_counts(conn, datetime.now(UTC) - timedelta(days=30))
        counts = dict.fromkeys((m.movie_id for m in self._catalog.movies()), 0) | counts
        self._fallback = await asyncio.to_thread(self._fallback_from, counts)

    async def reload(self) -> ReloadResult:
        """Load MODEL_PATH if its manifest names another artifact than the one served; raises
        ArtifactError (the current model stays) when the new one is refused."""
        async with self._lock:
            previous = self.current
            try:
                manifest = await asyncio.to_thread(read_manifest, self._path)
            except ArtifactError as exc:
                self.last_error = str(exc)
                raise
            if previous is not None and manifest.get("sha256") == previous.manifest.get("sha256"):
                return ReloadResult("unchanged", previous.model.version, previous.model.version)
            try:
                loaded = await asyncio.to_thread(self._load_and_warm)
            except ArtifactError as exc:
                self.last_error = str(exc)
                log.warning("model_rejected", error=str(exc))
                raise
            self.current = loaded  # the swap: one reference assignment
            self.last_error = None
            metrics.MODEL_INFO.info(
                {
                    "version": loaded.model.version,
                    "status": "loaded",
                    "loaded_at": loaded.loaded_at.isoformat(),
                }
            )
            log.info(
                "model_loaded",
                version=loaded.model.version,
                previous=previous.model.version if previous else None,
            )
            return ReloadResult(
                "reloaded", previous.model.version if previous else None, loaded.model.version
            )

    def _load_and_warm(self) -> LoadedModel:
        model, manifest = load_artifact(self._path)
        view = build_catalog_view(
            model, self._catalog.movies(), catalog_version=self._catalog.version
        )
        try:  # warm-up: one real call, so the first request does not pay for lazy set-up
            recommend(None, Context("home"), 10, model, view, now=datetime.now(UTC))
        except Exception as exc:
            raise ArtifactError(f"the model fails on a request: {type(exc).__name__}") from exc
        return LoadedModel(model, manifest, datetime.now(UTC), view)

    async def refresh_view(self) -> None:
        """Rebuild the catalog view if the catalog changed since it was built."""
        current = self.current
        if current is None or current.view.catalog_version == self._catalog.version:
            return
        version = self._catalog.version
        view = await asyncio.to_thread(
            build_catalog_view, current.model, self._catalog.movies(), catalog_version=version
        )
        if self.current is current:  # not replaced by a reload meanwhile
            self.current = LoadedModel(current.model, current.manifest, current.loaded_at, view)

    async def _run(self) -> None:
        while not self.stopping:
            with contextlib.suppress(ArtifactError):
                if self._path.exists() or self.current is not None:
                    await self.reload()
            try:
                await self.refresh_view()
                await self._refresh_fallback()
            except Exception as exc:  # keep serving the last good view
                log.warning("catalog_view_refresh_failed", error=type(exc).__name__)
            await self.pause(self._poll_s)
