"""The models a process serves: every named version of the model store (model/store.py),
each verified, warmed up and swapped atomically; and the catalog view that goes with each.

- Every process polls the store's names (``MODEL_POLL_S``): a name that points at another
  version is loaded (the bundle read from the store, its signature verified, model/bundle.py),
  warmed up (one real call of the engine) and swapped in: requests read the loaded model once,
  so a request in flight keeps the model it started with and no request fails during a swap.
  Every host shares the store, so every host switches within the poll period.
- MODEL_PATH is the seed's import path: a bundle written there is imported once (by content:
  the same bytes are never read twice), signed or refused, and moves the champion only when it
  was trained later than the champion's version. A refused file is not read again until it
  changes; a refused version is not loaded again.
- A refused bundle leaves the served model serving; ``last_error`` says why (/model/info,
  /health) and `model_artifacts_refused_total` counts it.
- The catalog views (arrays aligned with each model) are rebuilt in a worker thread whenever the
  catalog or a model changed, so availability changes reach recommendations within the catalog
  poll plus a rebuild (well under 10 s).
- Loading and rebuilding run in threads: they take tens of milliseconds to seconds, never on
  the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
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
from interaction_recommender.model.bundle import BundleError
from interaction_recommender.model.catalog_view import CatalogView, build_catalog_view
from interaction_recommender.model.context import Context
from interaction_recommender.model.engine import recommend
from interaction_recommender.model.keys import NoSigningKey, required_signing_keys
from interaction_recommender.model.store import CHAMPION, ModelStore, StoreError
from interaction_recommender.settings import Settings
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
    def __init__(self, settings: Settings, catalog: CatalogCache, database: Database) -> None:
        super().__init__("model-poll")
        self._settings = settings
        self._path = settings.effective_model_path
        self._catalog = catalog
        self._database = database
        self._fallback: LoadedModel | None = None
        self._fallback_counted_at = 0.0
        self._poll_s = settings.model_poll_s
        self._lock = asyncio.Lock()
        self._store: ModelStore | None = None
        self._file_seen: tuple[int, int] | None = None
        self._file_digest: str | None = None
        self._file_refusal: str | None = None
        """Why the file at MODEL_PATH, as last read, was refused (None: imported)."""
        self._refused: dict[str, str] = {}
        """version -> why it was refused (never loaded again)."""
        self.loaded: dict[str, LoadedModel] = {}
        """name -> the model this process serves for it."""
        self.last_error: str | None = None
        metrics.MODEL_INFO.info({"version": "fallback", "status": "fallback", "loaded_at": ""})

    @property
    def path(self) -> Path:
        return self._path

    @property
    def poll_s(self) -> float:
        """Every process picks a change of the store up within this many seconds."""
        return self._poll_s

    @property
    def current(self) -> LoadedModel | None:
        """The champion, when one is loaded."""
        return self.loaded.get(CHAMPION)

    def serving(self) -> LoadedModel:
        """What requests use now: the champion, else the popularity-only fallback."""
        current = self.current
        if current is not None:
            return current
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
        """Import MODEL_PATH when it is new, then serve what the store's names point at. Raises
        BundleError when MODEL_PATH or the champion's new version is refused (what was served
        keeps serving)."""
        async with self._lock:
            previous = self.current
            store = await self._open_store()
            refusal = await self._import_model_path(store)
            names = await store.names()
            for name in set(self.loaded) - set(names):
                del self.loaded[name]
            for name, named in sorted(names.items()):
                served = self.loaded.get(name)
                if served is not None and served.model.version == named.version:
                    continue
                if named.version in self._refused:
                    if name == CHAMPION:
                        refusal = refusal or self._refused[named.version]
                    continue
                try:
                    self.loaded[name] = await self._load_and_warm(store, named.version)
                except (BundleError, StoreError) as exc:
                    self._refuse(named.version, str(exc))
                    if name == CHAMPION:
                        refusal = str(exc)
                    continue
                log.info(
                    "model_loaded",
                    name=name,
                    version=named.version,
                    previous=served.model.version if served else None,
                )
            self._publish_info()
            current = self.current
            if refusal is not None:
                raise BundleError(refusal)
            self.last_error = None
            previous_version = previous.model.version if previous else None
            new_version = current.model.version if current else None
            status: Literal["reloaded", "unchanged"] = (
                "unchanged" if previous_version == new_version else "reloaded"
            )
            return ReloadResult(status, previous_version, new_version)

    async def store(self) -> ModelStore:
        """The model store, with this service's keys (BundleError when there is no key)."""
        return await self._open_store()

    async def _open_store(self) -> ModelStore:
        if self._store is None:
            try:
                keys = await required_signing_keys(self._settings, self._database)
            except NoSigningKey as exc:
                self.last_error = str(exc)
                raise BundleError(str(exc)) from None
            self._store = ModelStore(self._database, keys)
        return self._store

    async def _import_model_path(self, store: ModelStore) -> str | None:
        """Import MODEL_PATH when its bytes are new; the refusal's reason, if refused."""
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            return None
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen == self._file_seen:
            return self._file_refusal  # not read again until it changes
        bundle = await asyncio.to_thread(self._path.read_bytes)
        digest = hashlib.sha256(bundle).hexdigest()
        self._file_seen = seen
        if digest == self._file_digest:
            return self._file_refusal
        self._file_digest, self._file_refusal = digest, None
        try:
            added = await store.add(bundle, source="import", only_if_newer=True)
        except (BundleError, StoreError) as exc:
            reason = f"{self._path} refused: {exc}"
            if _looks_like_joblib(bundle):
                reason += " (an artifact of an earlier release: `recommender model migrate FILE`)"
            self._refuse_file(reason)
            self._file_refusal = reason
            return reason
        log.info("model_path_imported", version=added.version, moved=added.moved)
        return None

    def _refuse(self, version: str, reason: str) -> None:
        self._refused[version] = reason
        self.last_error = reason
        metrics.MODEL_REFUSED.inc()
        log.warning("model_refused", version=version, error=reason)

    def _refuse_file(self, reason: str) -> None:
        self.last_error = reason
        metrics.MODEL_REFUSED.inc()
        log.warning("model_refused", path=str(self._path), error=reason)

    async def _load_and_warm(self, store: ModelStore, version: str) -> LoadedModel:
        bundle = await store.bundle(version)
        return await asyncio.to_thread(self._verify_and_warm, store, bundle)

    def _verify_and_warm(self, store: ModelStore, bundle: bytes) -> LoadedModel:
        model, manifest = store.verify(bundle)
        manifest = {**manifest, "sha256": hashlib.sha256(bundle).hexdigest()}
        view = build_catalog_view(
            model, self._catalog.movies(), catalog_version=self._catalog.version
        )
        try:  # warm-up: one real call, so the first request does not pay for lazy set-up
            recommend(None, Context("home"), 10, model, view, now=datetime.now(UTC))
        except Exception as exc:
            raise BundleError(f"the model fails on a request: {type(exc).__name__}") from exc
        return LoadedModel(model, manifest, datetime.now(UTC), view)

    def _publish_info(self) -> None:
        current = self.current
        if current is None:
            return
        age = (datetime.now(UTC) - current.model.trained_at).total_seconds()
        metrics.MODEL_AGE.set(max(age, 0.0))
        metrics.MODEL_INFO.info(
            {
                "version": current.model.version,
                "status": "loaded",
                "loaded_at": current.loaded_at.isoformat(),
            }
        )

    async def refresh_view(self) -> None:
        """Rebuild the catalog views that are older than the catalog."""
        for name, loaded in list(self.loaded.items()):
            if loaded.view.catalog_version == self._catalog.version:
                continue
            version = self._catalog.version
            view = await asyncio.to_thread(
                build_catalog_view, loaded.model, self._catalog.movies(), catalog_version=version
            )
            if self.loaded.get(name) is loaded:  # not replaced by a reload meanwhile
                self.loaded[name] = LoadedModel(
                    loaded.model, loaded.manifest, loaded.loaded_at, view
                )

    async def _run(self) -> None:
        while not self.stopping:
            try:
                await self.reload()
            except BundleError:
                pass  # recorded in last_error; what was served keeps serving
            except Exception as exc:  # the database is down: keep serving, try again
                log.warning("model_poll_failed", error=type(exc).__name__)
            try:
                await self.refresh_view()
                await self._refresh_fallback()
            except Exception as exc:  # keep serving the last good view
                log.warning("catalog_view_refresh_failed", error=type(exc).__name__)
            await self.pause(self._poll_s)


def _looks_like_joblib(data: bytes) -> bool:
    """A joblib file of an earlier release: a zlib stream or a pickle."""
    return data[:1] in (b"\x78", b"\x80")
