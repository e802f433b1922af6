"""The embedded mode catches up at start: events accepted before a stop whose messages died with
the in-process log reach the features after the restart (issue 17, defect 4)."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.fixtures.app import embedded_settings, run_service
from tests.fixtures.factories import new_id
from tests.fixtures.serving import eventually, watch


async def test_events_whose_messages_died_with_the_process_reach_the_features(
    tmp_path: Path,
) -> None:
    user = new_id()
    movies = [uuid.uuid4() for _ in range(3)]
    # A first run stores the events and publishes them into its in-process log, but stops
    # before any consumer applied them (here: its consumers are off).
    async with run_service(embedded_settings(tmp_path, enable_consumers=False)) as first:
        for movie in movies:
            await watch(first, user, movie)
        features = await first.client.get(f"/api/v1/features/{user}")
        assert features.json()["features"]["totalInteractions"] == 0

    async with run_service(embedded_settings(tmp_path)) as second:

        async def caught_up() -> bool:
            answer = await second.client.get(f"/api/v1/features/{user}")
            return answer.json()["features"]["totalInteractions"] == len(movies)

        await eventually(caught_up, timeout=15)
