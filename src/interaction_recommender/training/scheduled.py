"""Training from the stored events while the service runs: the embedded mode's first demo model
and scheduled retraining (TRAIN_INTERVAL_S > 0).

Scheduled retraining runs in `recommender worker` only, never in the API process: a fit takes
seconds to minutes of CPU. It trains in a thread (numpy/scipy release the GIL for the heavy
parts), stores the signed model as the champion's new version in the model store (one
transaction: all or nothing), and every serving process switches by polling the store's names.
With several workers, the trainer lock (storage/locks.py, also held by `recommender train`) lets
one of them train per round; the others skip it.
"""

from __future__ import annotations

import asyncio

import structlog

from interaction_recommender.background import BackgroundLoop
from interaction_recommender.model.keys import required_signing_keys
from interaction_recommender.model.store import CHAMPION, ModelStore
from interaction_recommender.settings import Settings
from interaction_recommender.storage.database import Database
from interaction_recommender.storage.locks import TRAINER_LOCK, try_session_lock
from interaction_recommender.training.job import fit, save, stored_training_input
from interaction_recommender.training.pipeline import TrainResult

__all__ = ["ScheduledTraining", "train_from_database"]

log = structlog.get_logger(__name__)


async def train_from_database(
    settings: Settings, database: Database, *, name: str = CHAMPION
) -> TrainResult | None:
    """Train on every stored event (and the impression log's lists when LABEL_IGNORED_TWICE is
    not 0), store the model as the new version of ``name`` and collect the store's garbage;
    None when there are no events. The caller holds the trainer lock."""
    data = await stored_training_input(settings, database)
    if not data.events:
        return None
    log.info("training_started", events=len(data.events))
    result = await asyncio.to_thread(fit, settings, data)
    # Not reached when the round was cancelled meanwhile (a worker stopping): the thread's fit
    # finishes unseen, and nothing is stored after the trainer lock is gone.
    added = await save(settings, database, result, name=name)
    store = ModelStore(database, await required_signing_keys(settings, database))
    await store.collect_garbage(settings.model_keep)
    log.info(
        "training_finished",
        version=result.model.version,
        name=name,
        moved=added.moved,
        seconds=round(result.seconds, 1),
        metrics=result.metrics,
    )
    return result


class ScheduledTraining(BackgroundLoop):
    def __init__(self, settings: Settings, database: Database, *, interval_s: float) -> None:
        super().__init__("scheduled-training")
        self._settings = settings
        self._database = database
        self._interval_s = interval_s
        self.rounds = 0

    async def stop(self) -> None:
        await self._end(cancel_after_s=0)  # a fit takes minutes: do not wait for it

    async def run_once(self) -> str | None:
        """One round: the new model's version, or None (no events, or another worker trains)."""
        async with try_session_lock(self._database, TRAINER_LOCK) as mine:
            if not mine:
                log.info("training_skipped", reason="another worker is training")
                return None
            result = await train_from_database(self._settings, self._database)
            self.rounds += 1
            return result.model.version if result is not None else None

    async def _run(self) -> None:
        while True:
            await self.pause(self._interval_s)
            if self.stopping:
                return
            try:
                await self.run_once()
            except Exception:  # the current model keeps serving; the next round tries again
                log.exception("scheduled_training_failed")
