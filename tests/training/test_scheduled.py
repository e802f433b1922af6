"""Scheduled retraining: one worker trains per round, and serving processes pick the model up."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from interaction_recommender.demo.loader import load_world
from interaction_recommender.demo.world import generate_world
from interaction_recommender.settings import Settings
from interaction_recommender.storage.locks import TRAINER_LOCK
from interaction_recommender.training.scheduled import ScheduledTraining
from tests.fixtures.app import run_service
from tests.fixtures.serving import eventually


@pytest.mark.parametrize("mode", ["platform"], indirect=True)
async def test_scheduled_training_replaces_the_model_and_takes_turns(settings: Settings) -> None:
    configured = settings.model_copy(update={"model_poll_s": 0.5})
    async with run_service(configured) as service:
        runtime = service.runtime
        await load_world(
            generate_world(12, movies=60, users=200, days=30),
            database=runtime.database,
            events=runtime.events,
            event_topic=runtime.topics.interaction_events,
            catalog_topic=runtime.topics.movie_catalog,
        )
        await runtime.catalog.refresh()
        training = ScheduledTraining(configured, runtime.database, interval_s=0.2)

        async with runtime.database.engine.connect() as other_worker:
            lock = {"ns": TRAINER_LOCK[0], "key": TRAINER_LOCK[1]}
            await other_worker.execute(text("SELECT pg_advisory_lock(:ns, :key)"), lock)
            assert await training.run_once() is None  # the other worker is training
            await other_worker.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), lock)

        training.start()
        try:

            async def retrained() -> bool:
                loaded = runtime.registry.current
                return loaded is not None and loaded.model.version != "test"

            await eventually(retrained, timeout=120)
        finally:
            await training.stop()
        assert training.rounds >= 1
        body = (await service.client.get("/api/v1/model/info")).json()
        assert body["status"] == "loaded"
        assert body["counts"]["events"] > 0
