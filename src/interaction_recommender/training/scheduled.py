"""Training from the stored events while the service runs: the embedded mode's first demo model
and scheduled retraining (TRAIN_INTERVAL_S > 0).

Scheduled retraining runs in `recommender worker` only, never in the API process: a fit takes
seconds to minutes of CPU. It trains in a thread (numpy/scipy release the GIL for the heavy
parts), writes the artifact atomically to MODEL_PATH (the previous one kept for rollback), and
every serving process picks the new version up by polling the manifest. With several workers, a
Postgres advisory lock lets one of them train per round; the others skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from sqlalchemy import text

from interaction_recommender.catalog.cache import CatalogCache
from interaction_recommender.events.queries import event_messages_in_pages
from interaction_recommender.model.artifact import save_artifact
from interaction_recommender.model.engine import EngineSettings
from interaction_recommender.model.labels import LabelWeights
from interaction_recommender.settings import Settings
from interaction_recommender.storage.database import Database
from interaction_recommender.training.fit import FitConfig
from interaction_recommender.training.impressions import stored_shown_lists
from interaction_recommender.training.pipeline import TrainResult, train_model

__all__ = ["ScheduledTraining", "train_from_database"]

log = structlog.get_logger(__name__)

_TRAINER_LOCK = (3, 0)  # (namespace, key) of the advisory lock: one trainer at a time


async def train_from_database(
    settings: Settings, database: Database, catalog: CatalogCache
) -> TrainResult | None:
    """Train on every stored event (and the impression log's lists when LABEL_IGNORED_TWICE is
    not 0) and write the artifact; None when there are no events."""
    events = await event_messages_in_pages(database)
    async with database.transaction() as conn:
        shown = await stored_shown_lists(conn) if settings.label_ignored_twice else []
    if not events:
        return None
    log.info("training_started", events=len(events))
    result = await asyncio.to_thread(
        train_model,
        events,
        catalog.movies(),
        labels=LabelWeights.from_settings(settings),
        config=FitConfig(ease_max_items=settings.ease_max_items, threads=settings.train_threads),
        engine=EngineSettings(diversity=settings.diversity),
        impressions=shown,
    )
    await asyncio.to_thread(save_artifact, result.model, settings.effective_model_path)
    log.info(
        "training_finished",
        version=result.model.version,
        seconds=round(result.seconds, 1),
        metrics=result.metrics,
    )
    return result


class ScheduledTraining:
    def __init__(
        self, settings: Settings, database: Database, catalog: CatalogCache, *, interval_s: float
    ) -> None:
        self._settings = settings
        self._database = database
        self._catalog = catalog
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scheduled-training")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_once(self) -> str | None:
        """One round: the new model's version, or None (no events, or another worker trains)."""
        async with self._trainer_lock() as mine:
            if not mine:
                log.info("training_skipped", reason="another worker is training")
                return None
            result = await train_from_database(self._settings, self._database, self._catalog)
            self.rounds += 1
            return result.model.version if result is not None else None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.run_once()
            except Exception:  # the current model keeps serving; the next round tries again
                log.exception("scheduled_training_failed")

    @contextlib.asynccontextmanager
    async def _trainer_lock(self) -> AsyncIterator[bool]:
        if self._database.dialect != "postgresql":
            yield True  # SQLite: one process
            return
        async with self._database.engine.connect() as conn:
            mine = (
                await conn.execute(
                    text("SELECT pg_try_advisory_lock(:ns, :key)"),
                    {"ns": _TRAINER_LOCK[0], "key": _TRAINER_LOCK[1]},
                )
            ).scalar_one()
            await conn.commit()  # no transaction stays open for the length of a fit
            try:
                yield bool(mine)
            finally:
                if mine:
                    await conn.execute(
                        text("SELECT pg_advisory_unlock(:ns, :key)"),
                        {"ns": _TRAINER_LOCK[0], "key": _TRAINER_LOCK[1]},
                    )
                    await conn.commit()
