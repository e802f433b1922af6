"""A Redis that refuses connections never makes the feature routes answer 500: reads fall back
to the snapshot in Postgres, writes that need Redis answer 503 with Retry-After (issue 17,
defect 6)."""

from __future__ import annotations

import uuid

import pytest

from interaction_recommender.settings import Settings
from tests.fixtures.app import run_service
from tests.fixtures.contract import assert_error_shape
from tests.fixtures.factories import new_id
from tests.fixtures.services import free_port
from tests.fixtures.serving import ADMIN, watch


@pytest.mark.parametrize("mode", ["platform"], indirect=True)
async def test_feature_routes_answer_from_the_snapshot_or_503_when_redis_is_down(
    settings: Settings,
) -> None:
    down = settings.model_copy(
        update={
            "redis_url": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "admin_token": ADMIN,
            "health_probe_timeout_s": 0.5,
        }
    )
    async with run_service(down) as service:
        user = new_id()
        await watch(service, user, uuid.uuid4())  # stored in Postgres

        read = await service.client.get(f"/api/v1/features/{user}")
        refresh = await service.client.post(f"/api/v1/features/{user}/refresh")
        erase = await service.client.delete(
            f"/api/v1/users/{user}", headers={"Authorization": f"Bearer {ADMIN}"}
        )

    assert read.status_code == 200, read.text  # the snapshot's (here: nothing processed yet)
    assert read.json()["userId"] == user
    assert refresh.status_code == 503, refresh.text
    assert refresh.headers["Retry-After"] == "1"
    assert_error_shape(refresh.json())
    # Erasure is a job: durable at once, its Redis step retried until Redis answers.
    assert erase.status_code == 202, erase.text
    steps = {step["name"]: step for step in erase.json()["steps"]}
    assert steps["database"]["status"] == "done"
    assert steps["online_features"]["status"] == "pending"
    assert steps["online_features"]["lastError"]
