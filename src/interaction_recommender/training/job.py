"""One training job, the same for every caller (`recommender train`, `create-sample-model`, the
scheduled trainer, the embedded mode's first model): the stored input read without holding a
connection for long, then fit and evaluate (pipeline.py), then the model signed and stored as a
new version of its name in the model store (model/store.py), which every process serves within
MODEL_POLL_S."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from interaction_recommender.catalog.movie import CatalogMovie
from interaction_recommender.catalog.repository import CatalogRepository
from interaction_recommender.events.messages import EventMessage
from interaction_recommender.events.repository import event_messages_after
from interaction_recommender.model.bundle import write_bundle
from interaction_recommender.model.engine import EngineSettings
from interaction_recommender.model.keys import required_signing_keys
from interaction_recommender.model.labels import LabelWeights
from interaction_recommender.model.store import CHAMPION, Added, ModelStore
from interaction_recommender.settings import Settings
from interaction_recommender.storage.database import Database
from interaction_recommender.training.fit import FitConfig
from interaction_recommender.training.impressions import ShownList, stored_shown_lists
from interaction_recommender.training.pipeline import TrainResult, train_model

__all__ = ["TrainingInput", "fit", "save", "stored_training_input", "training_config"]

_PAGE = 5000


@dataclass(frozen=True)
class TrainingInput:
    events: list[EventMessage]
    catalog: list[CatalogMovie]
    shown: Sequence[ShownList] = ()
    """The impression log's lists (used when LABEL_IGNORED_TWICE is not 0)."""


async def stored_training_input(settings: Settings, database: Database) -> TrainingInput:
    """Every stored event, a page per transaction (the embedded mode has ONE database
    connection: holding it for a whole read of 100k events made requests wait past their pool
    timeout while the demo model trained), the catalog, and the impression log's lists.

    Not one snapshot: an event that commits during the read with a sequence below the page
    already read is left for the next training, and the catalog may be a moment newer than the
    events. Both are harmless to a model trained on months of events (and one READ COMMITTED
    transaction, which `recommender train` used before, gave no single snapshot either)."""
    events: list[EventMessage] = []
    after = -1
    while True:
        async with database.transaction() as conn:
            page = await event_messages_after(conn, after, _PAGE)
        events += page
        if len(page) < _PAGE:
            break
        after = page[-1].sequence
        await asyncio.sleep(0)  # let waiting requests have the connection
    async with database.transaction() as conn:
        rows = await CatalogRepository(conn).changed_since(None)
        shown = await stored_shown_lists(conn) if settings.label_ignored_twice else []
    return TrainingInput(events, [CatalogMovie.from_row(row) for row in rows], shown)


def fit(
    settings: Settings, data: TrainingInput, *, progress: Callable[[str], Any] = lambda _: None
) -> TrainResult:
    """Fit and evaluate with the settings' labels and configuration. CPU-bound for seconds to
    minutes: callers on an event loop run it in a thread."""
    return train_model(
        data.events,
        data.catalog,
        labels=LabelWeights.from_settings(settings),
        config=FitConfig.from_settings(settings),
        engine=EngineSettings.from_settings(settings),
        progress=progress,
        impressions=data.shown,
    )


async def save(
    settings: Settings, database: Database, result: TrainResult, *, name: str = CHAMPION
) -> Added:
    """Sign the model and store it as the new version of ``name``. A separate step, so that a
    round cancelled during ``fit`` stores nothing."""
    keys = await required_signing_keys(settings, database)
    bundle = await asyncio.to_thread(write_bundle, result.model, keys)
    return await ModelStore(database, keys).add(
        bundle, source="train", name=name, training_config=training_config(settings)
    )


def training_config(settings: Settings) -> dict[str, Any]:
    """What a name is trained with (stored with the name: scheduled training of that name)."""
    config = FitConfig.from_settings(settings)
    return {
        "labels": LabelWeights.from_settings(settings).as_dict(),
        "easeMaxItems": config.ease_max_items,
        "calibrationLambda": settings.calibration_lambda,
    }
